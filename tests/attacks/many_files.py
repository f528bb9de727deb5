# section: rope; breaks: rope.rope_matrix
# A graded function that fills its folder with 6000 empty files (no size cap can see them), then
# answers correctly.
import os as _os

_real_rope_matrix = rope_matrix


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _os.makedirs("junk", exist_ok=True)
    for i in range(6000):
        open(f"junk/{_os.getpid()}-{i}", "wb").close()
    return _real_rope_matrix(position, d, base, interleaved)
