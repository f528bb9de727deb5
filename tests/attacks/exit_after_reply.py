# section: rope; breaks: none
# A graded function that returns the right values, then ends its own process from a thread as soon
# as the reply is sent: the grader's next request (the next test's, often the next exercise's) may
# find it gone, or be on its way when it goes. The grader checks the process before each request
# and asks a request whose process ended before answering once more of a fresh process, so no test
# fails for what an earlier call did. (Its processes carry the marker, to count them.)
import ctypes as _ctypes
import os as _os
import sys as _sys
import threading as _threading
import time as _time

_ctypes.CDLL(None).prctl(15, _ctypes.c_char_p(b"__MARKER__"), 0, 0, 0)  # PR_SET_NAME
_solution_rope_inv_freq = rope_inv_freq


def _exit_once_replied(main: int) -> None:
    """Wait until the main thread waits for the next request (the reply is sent), then end the process."""
    while True:
        frame = _sys._current_frames().get(main)
        while frame is not None and frame.f_code.co_name != "_recv_exact":
            frame = frame.f_back
        if frame is not None:
            _os._exit(0)
        _time.sleep(0.0005)


def rope_inv_freq(d, base=10000.0):
    if _sys._getframe(1).f_globals.get("__name__") == "course.sandbox.child":  # the grader's call
        _threading.Thread(target=_exit_once_replied, args=(_threading.main_thread().ident,), daemon=True).start()
    return _solution_rope_inv_freq(d, base)
