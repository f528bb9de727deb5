# section: alibi; breaks: alibi.alibi_slopes
# A graded function that is the course's own working implementation (the extrapolation lab's),
# imported from the course package and wrapped, instead of the learner's work.


def alibi_slopes(n_heads):
    from course.lab.model import alibi_slopes as _theirs

    return _theirs(n_heads)
