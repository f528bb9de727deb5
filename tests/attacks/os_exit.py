# section: rope; breaks: rope.rope_matrix
# A graded function that ends the process at once (no cleanup, no exception).
import os as _os


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _os._exit(0)
