# section: rope; breaks: rope.rope_matrix
# A graded function that fills its folder with files below the per-file cap (1 MB each, 96 MB in
# all: three times the 32 MB scratch cap the test sets), then answers correctly.
import os as _os

_real_rope_matrix = rope_matrix


def rope_matrix(position, d, base=10000.0, interleaved=False):
    block = b"x" * 2**20
    for i in range(96):
        with open(f"junk-{_os.getpid()}-{i}", "wb") as junk:
            junk.write(block)
    return _real_rope_matrix(position, d, base, interleaved)
