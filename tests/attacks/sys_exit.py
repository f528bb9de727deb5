# section: rope; breaks: rope.rope_matrix
# A graded function that asks the interpreter to exit.
import sys as _sys


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _sys.exit(0)
