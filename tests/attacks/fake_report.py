# section: rope; breaks: rope.rope_matrix
# Prints a fake full-marks report, at import and from a graded function, through every
# stream it can reach: print, sys.__stdout__, the raw fds 1 and 2, and the grader's own
# stdout through /proc.
import json as _json
import os as _os
import sys as _sys

_FAKE = _json.dumps({"score": 999.0, "max_score": 999.0, "exercises": [
    {"id": "rope.rope_matrix", "score": 999.0, "max_score": 2.0, "feedback": "FAKE-REPORT __MARKER__"}]})


def _shout():
    print(_FAKE, flush=True)
    print(_FAKE, file=_sys.stderr, flush=True)
    _sys.__stdout__.write(_FAKE + "\n")
    _sys.__stdout__.flush()
    for fd in (1, 2):
        _os.write(fd, (_FAKE + "\n").encode())
    grader = None
    try:
        fork_server = _os.getppid()
        with open(f"/proc/{fork_server}/stat") as f:
            grader = int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        pass
    reached = []
    for pid in (_os.getppid(), grader):
        for fd in (1, 2):
            try:
                with open(f"/proc/{pid}/fd/{fd}", "w") as out:
                    out.write(_FAKE + "\n")
                reached.append(f"{pid}/{fd}")
            except OSError:
                pass
    return reached


_shout()


def rope_matrix(position, d, base=10000.0, interleaved=False):
    reached = _shout()
    if reached:
        raise RuntimeError(f"wrote the fake report into {reached}")
    return torch.zeros(d, d)
