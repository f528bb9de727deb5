# section: rope; breaks: rope.rope_matrix
# A graded function that asks the kernel for a hidden suite by file handle instead of by path
# (name_to_handle_at, then open_by_handle_at, which needs CAP_DAC_READ_SEARCH: a learner graded as
# root keeps that capability when its own user id cannot read the Python installation).
import ctypes as _ctypes
import os as _os
import sys as _sys

import course as _course

_SUITE = _os.path.join(_os.path.dirname(list(_course.__path__)[0]), "grader_tests", "test_rope.py")
_libc = _ctypes.CDLL(None, use_errno=True)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    handle = _ctypes.create_string_buffer(8 + 128)
    _ctypes.memmove(handle, (128).to_bytes(4, "little"), 4)  # struct file_handle: handle_bytes = 128
    mount_id = _ctypes.c_int()
    if _libc.name_to_handle_at(-100, _SUITE.encode(), handle, _ctypes.byref(mount_id), 0) != 0:
        raise RuntimeError(f"HANDLE no handle: {_os.strerror(_ctypes.get_errno())}")
    where = _os.open(_sys.prefix, _os.O_RDONLY)  # readable, and most likely on the suites' file system
    fd = _libc.open_by_handle_at(where, handle, _os.O_RDONLY)
    if fd < 0:
        raise RuntimeError(f"HANDLE DENIED {_os.strerror(_ctypes.get_errno())}")
    raise RuntimeError("HANDLE READ " + _os.read(fd, 60).decode("utf-8", "replace"))
