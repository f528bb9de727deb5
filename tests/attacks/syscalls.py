# section: rope; breaks: rope.rope_matrix
# A graded function that tries the kernel's less guarded doors: new namespaces (unshare, clone
# and clone3 with namespace flags, setns), the keyring, eBPF, perf events, userfaultfd and a
# personality change. Arguments are chosen so that, without a seccomp filter, each call succeeds
# or fails with an error other than EPERM/ENOSYS (EBADF, EINVAL, EFAULT), so the account tells
# the filter's answer from the kernel's own checks. Then it checks that what learners use still
# works: threads, fork, a subprocess, torch on two threads. It raises with a JSON account.
import ctypes as _ctypes
import errno as _errno
import json as _json
import os as _os
import platform as _platform
import subprocess as _subprocess
import sys as _sys
import threading as _threading

import torch as _torch

_NR = {
    "x86_64": {"unshare": 272, "clone": 56, "clone3": 435, "setns": 308, "keyctl": 250, "add_key": 248,
               "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "personality": 135},
    "aarch64": {"unshare": 97, "clone": 220, "clone3": 435, "setns": 268, "keyctl": 219, "add_key": 217,
                "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "personality": 92},
}[_platform.machine()]
_SIGCHLD, _NEWUSER, _NEWNET, _NEWNS, _NEWPID = 17, 0x10000000, 0x40000000, 0x00020000, 0x20000000
_libc = _ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = _ctypes.c_long


def _call(name, *args):
    """'ok' or the errno's name; a child made by a successful clone leaves at once."""
    ret = _libc.syscall(_ctypes.c_long(_NR[name]), *[_ctypes.c_long(a) for a in args])
    if ret < 0:
        return _errno.errorcode.get(_ctypes.get_errno(), str(_ctypes.get_errno()))
    if name in ("clone", "clone3") and ret == 0:
        _os._exit(0)
    if name in ("clone", "clone3"):
        _os.waitpid(ret, 0)
    return "ok"


def _clone3_args(flags):
    args = (_ctypes.c_uint64 * 11)(flags, 0, 0, 0, _SIGCHLD, 0, 0, 0, 0, 0, 0)  # struct clone_args
    return _ctypes.addressof(args), _ctypes.sizeof(args), args


def _works():
    found = {}
    box = []
    thread = _threading.Thread(target=lambda: box.append(1))
    thread.start()
    thread.join()
    found["thread"] = "ok" if box == [1] else "failed"
    pid = _os.fork()
    if pid == 0:
        _os._exit(7)
    found["fork"] = "ok" if _os.waitstatus_to_exitcode(_os.waitpid(pid, 0)[1]) == 7 else "failed"
    out = _subprocess.run([_sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
    found["subprocess"] = "ok" if out.stdout.strip() == "42" else f"failed {out.stderr[-200:]}"
    before = _torch.get_num_threads()
    _torch.set_num_threads(2)
    try:
        x = _torch.ones(256, 256)
        found["torch_threads"] = "ok" if float((x @ x)[0, 0]) == 256.0 else "failed"
    finally:
        _torch.set_num_threads(before)
    return found


def rope_matrix(position, d, base=10000.0, interleaved=False):
    address, size, keep = _clone3_args(_NEWUSER)
    plain3, plain_size, keep_plain = _clone3_args(0)
    found = {
        "unshare_user": _call("unshare", _NEWUSER),
        "unshare_net": _call("unshare", _NEWNET),
        "unshare_mount": _call("unshare", _NEWNS),
        "clone_user": _call("clone", _NEWUSER | _SIGCHLD, 0, 0, 0, 0),
        "clone_pid": _call("clone", _NEWPID | _SIGCHLD, 0, 0, 0, 0),
        "clone3_user": _call("clone3", address, size),
        "clone3_plain": _call("clone3", plain3, plain_size),
        "setns": _call("setns", 999, 0),                         # EBADF without a filter
        "keyctl": _call("keyctl", 0, -3, 0),                     # the session keyring's id without one
        "add_key": _call("add_key", 0, 0, 0, 0, -3),             # EFAULT without one
        "request_key": _call("request_key", 0, 0, 0, 0),         # EFAULT without one
        "bpf": _call("bpf", 0xFFFF, 0, 0),                       # EINVAL without one
        "perf_event_open": _call("perf_event_open", 0, 0, -1, -1, 0),  # EFAULT without one
        "userfaultfd": _call("userfaultfd", 0),
        "personality_no_aslr": _call("personality", 0x0040000),  # ADDR_NO_RANDOMIZE
        "personality_query": _call("personality", 0xFFFFFFFF),
    }
    del keep, keep_plain
    found.update(_works())
    raise RuntimeError("SYSCALLS " + _json.dumps(found))
