# section: rope; breaks: rope.rope_matrix
# A graded function that sleeps 100 s on every call: the exercise's time budget must cap
# what it costs, however many tests call it.
import time as _time

_solution_rope_matrix = rope_matrix


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _time.sleep(100)
    return _solution_rope_matrix(position, d, base, interleaved)
