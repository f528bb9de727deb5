"""An adapter that runs but defines none of the course's names."""


def my_rope(x, positions):
    return rotate(x, positions)
