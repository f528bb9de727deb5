# section: rope; breaks: rope.rope_matrix
# A graded function that forks 40 sleeping children (a bounded fork storm) and returns a
# wrong answer. With a small process limit, fork itself fails part way.
import ctypes as _ctypes
import os as _os
import time as _time


_STORMED = []


def rope_matrix(position, d, base=10000.0, interleaved=False):
    for _ in range(0 if _STORMED else 40):
        _STORMED.append(1)
        if _os.fork() == 0:
            _ctypes.CDLL(None).prctl(15, _ctypes.c_char_p(b"__MARKER__"), 0, 0, 0)  # PR_SET_NAME
            _os.closerange(3, 256)
            _time.sleep(1000)
            _os._exit(0)
    return torch.zeros(d, d)
