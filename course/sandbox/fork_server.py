"""Fork server for learner processes.

Importing torch takes seconds; forking a process that already imported it takes
milliseconds. The fork server never runs learner code (nor imports the solutions or the
hidden suites): it imports the libraries, then for each request forks a child that confines
itself (course.sandbox.confinement) before serving (course.sandbox.child). The grader
starts and talks to it through course.sandbox.fork_client.

Protocol on the control socket (SOCK_SEQPACKET, one JSON message per request):
- spawn: the request carries the learner's socket end (SCM_RIGHTS); the reply is
  ``{"pid": ...}``. The child first sends ``{"hello": <isolation status>}`` on its socket.
- ``{"op": "kill", "pid": ..., "wait": bool}``: kill that learner's whole process tree and
  any stray process re-parented to the fork server; the reply ``{"killed": n}`` comes once
  they are signalled (with ``wait``: once they are gone).
- ``{"op": "info"}``: what this platform allows (``{"info": {...}}``).
When the grader goes away, the fork server kills every learner and stray, then exits.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

from course.sandbox import confinement, isolation, reaper


def _preload() -> None:
    """Import what every learner process needs, without starting any thread pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import course.sandbox.child  # noqa: F401
    from course.sandbox import second_device

    torch.set_num_threads(1)
    # First use of these loads more of torch (broadcast_shapes: symbolic shapes and sympy, 0.3 s):
    # pay it once here. (The real meta device's kernels, 0.7 s more, no learner process uses.)
    torch.broadcast_shapes((3, 1), (3, 4))
    x = torch.ones(2, 3)
    y = torch.softmax(x @ x.T * 2 + x.sum(), dim=-1).masked_fill(torch.ones(2, 2, dtype=torch.bool), 0)
    y = y[torch.zeros(1, dtype=torch.long)].clamp(-1, 1).where(y > 0, y).gather(0, torch.zeros(1, 2, dtype=torch.long))
    torch.cat((x, x.half().float().to(torch.bfloat16).float()), dim=-1).sin().cos()
    del x, y
    torch.nn.Embedding(2, 2)(torch.tensor([0, 1]))
    second_device.warm_up()  # the hidden suites' device checks


_REAPED: list[int] = []  # children collected by the SIGCHLD handler, for the main loop to forget


def _on_sigchld(*_) -> None:
    _REAPED.extend(reaper.reap_children())


def _collect(learners: set[int]) -> None:
    """Forget learners that have been reaped (until then their pids cannot be reused)."""
    while _REAPED:
        learners.discard(_REAPED.pop())


def _kill(pid: int, learners: set[int], wait: bool) -> int:
    """Kill learner `pid` (if it is one) with its tree, and every stray; with `wait`, return
    only once they are gone (a killed process with a large address space takes a while)."""
    _collect(learners)
    killed: set[int] = set()
    table = None
    if pid in learners:
        killed, table = reaper.kill_tree(pid)
    for _ in range(100):
        found = reaper.strays(table or reaper.processes(), os.getpid(), learners)
        if not found:
            break
        for stray in found:
            killed |= reaper.kill_tree(stray)[0]
        table = None
    if wait:
        reaper.wait_gone(killed, reaped=_REAPED)
        _collect(learners)
    return len(killed)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    isolation.set_process_name("course-fork-srv")
    # Everything loaded here lives as long as the learner processes: the garbage collector need
    # not walk it while it loads (0.25 s), nor afterwards in each child (that costs CPU and copies
    # the shared pages). Not collecting before freezing keeps about 2 MB of import-time garbage.
    gc.disable()
    _preload()
    confinement.INFO.update(confinement.platform_info())
    gc.freeze()
    gc.enable()
    signal.signal(signal.SIGCHLD, _on_sigchld)
    learners: set[int] = set()
    control.sendall(b"ready\n")
    try:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(control, 65536, 1)
            except InterruptedError:
                continue
            if not message:
                return  # the grader went away
            request = json.loads(message)
            op = request.get("op", "spawn")
            if op == "kill":
                for fd in fds:
                    os.close(fd)
                n = _kill(int(request["pid"]), learners, bool(request.get("wait")))
                control.sendall(json.dumps({"killed": n}).encode())
                continue
            if op == "info" or not fds:
                for fd in fds:
                    os.close(fd)
                info = {k: v for k, v in confinement.INFO.items() if k != "reads"}
                control.sendall(json.dumps({"info": info}).encode())
                continue
            _collect(learners)
            confinement.learner_reads(request)  # computed here once, not in every child
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    confinement.become_learner(request, fds[0])
                finally:
                    os._exit(0)
            learners.add(pid)
            os.close(fds[0])
            control.sendall(json.dumps({"pid": pid}).encode())
    finally:
        for pid in list(learners):
            _kill(pid, learners, wait=False)
        _kill(-1, learners, wait=True)
