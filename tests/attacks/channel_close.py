# section: rope; breaks: rope.rope_matrix
# A graded function that closes every file descriptor of its process (the grading
# channel, stdout, stderr), then returns the right answer.
import os as _os

_solution_rope_matrix = rope_matrix


def rope_matrix(position, d, base=10000.0, interleaved=False):
    result = _solution_rope_matrix(position, d, base, interleaved)
    _os.closerange(0, 1024)
    return result
