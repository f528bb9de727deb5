# section: rope; breaks: rope.rope_matrix
# A graded function that writes garbage into the grading channel (every socket it holds),
# then returns the right answer as if nothing happened.
import os as _os

_solution_rope_matrix = rope_matrix


def _sockets():
    found = []
    for name in _os.listdir("/proc/self/fd"):
        try:
            if _os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.append(int(name))
        except OSError:
            pass
    return found


def rope_matrix(position, d, base=10000.0, interleaved=False):
    for fd in _sockets():
        _os.write(fd, b"\xff\x00garbage" * 64)
    return _solution_rope_matrix(position, d, base, interleaved)
