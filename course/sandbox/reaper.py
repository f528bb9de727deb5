"""Killing a learner's whole process tree, including daemons that left its session.

``killpg`` misses a child that called ``setsid`` (or double-forked into a new session),
so the process tree is followed instead:

- every learner process is a child subreaper (``PR_SET_CHILD_SUBREAPER``): a descendant
  orphaned by a dying parent is re-parented to the learner, never to init, so the
  learner's tree holds everything it started while it lives;
- the fork server is a subreaper too, so what the learner started is re-parented to the
  fork server if the learner itself dies first (or uses ``CLONE_PARENT``); the fork
  server forked nothing but learners, so any other child of it is a stray and is killed
  the same way;
- ``kill_tree`` stops the root (a stopped process cannot fork), then kills every
  descendant it finds in ``/proc`` until none is left (children of a killed process are
  re-parented to the stopped root or the fork server and found in the next pass), then the
  root. Without ``/proc`` (not Linux) it falls back to ``killpg``.
"""
from __future__ import annotations

import os
import signal
import time

PROC = "/proc"


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process, from /proc."""
    table = {}
    try:
        entries = os.listdir(PROC)
    except OSError:
        return table
    for name in entries:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"{PROC}/{name}/stat", os.O_RDONLY)
            try:
                data = os.read(fd, 512)
            finally:
                os.close(fd)
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split(None, 2)
        if len(fields) >= 2:
            table[int(name)] = (int(fields[1]), fields[0].decode())
    return table


def descendants(table: dict[int, tuple[int, str]], roots) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(root: int, passes: int = 1000) -> tuple[set[int], dict]:
    """SIGKILL `root` and all its descendants; returns the pids signalled and the last
    process table read (in which no descendant was left alive)."""
    if not os.path.isdir(f"{PROC}/self"):
        try:
            os.killpg(root, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _signal(root, signal.SIGKILL)
        return {root}, {}
    _signal(root, signal.SIGSTOP)
    killed = {root}
    for _ in range(passes):
        table = processes()
        alive = [p for p in descendants(table, [root]) if table[p][1] not in "ZX"]
        if not alive:
            break
        for pid in alive:
            _signal(pid, signal.SIGKILL)
        killed.update(alive)
    _signal(root, signal.SIGKILL)
    return killed, table


def strays(table: dict, parent: int, expected) -> list[int]:
    """Children of `parent` (a subreaper) that it did not fork itself."""
    return [pid for pid, (ppid, state) in table.items() if ppid == parent and pid not in expected and state not in "ZX"]


def reap_children() -> list[int]:
    """Collect every exited child of this process without blocking."""
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append(pid)


def wait_gone(pids, timeout: float = 5.0, reaped: list | None = None) -> bool:
    """Reap (into `reaped`) and wait until none of `pids` exists any more (True) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    pids = set(pids)
    while True:
        done = reap_children()
        if reaped is not None:
            reaped.extend(done)
        pids = {p for p in pids if os.path.exists(f"{PROC}/{p}")}
        if not pids or time.monotonic() > deadline:
            return not pids
        time.sleep(0.002)
