# section: rope; breaks: rope.rope_matrix
# A graded function that double-forks a daemon into a new session (out of reach of
# killpg), which ignores the polite signals and keeps forking a fresh copy of itself
# (a new pid) every 50 ms, to outlive grading.
import ctypes as _ctypes
import os as _os
import signal as _signal
import time as _time


def _become_daemon():
    _os.setsid()
    if _os.fork():
        _os._exit(0)  # the session leader goes; the daemon has no controlling anything
    _ctypes.CDLL(None).prctl(15, _ctypes.c_char_p(b"__MARKER__"), 0, 0, 0)  # PR_SET_NAME
    for sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):
        _signal.signal(sig, _signal.SIG_IGN)
    _os.closerange(3, 256)
    while True:
        _time.sleep(0.05)
        if _os.fork():
            _os._exit(0)  # hop: the child carries on under a new pid
        _os.setsid()


def rope_matrix(position, d, base=10000.0, interleaved=False):
    first = _os.fork()
    if first == 0:
        try:
            _become_daemon()
        finally:
            _os._exit(0)
    _os.waitpid(first, 0)
    return torch.zeros(d, d)
