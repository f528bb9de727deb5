"""Fork server for learner processes.

Importing torch takes seconds; forking a process that already imported it takes
milliseconds. The zygote never runs learner code: it imports the libraries, then for each
request forks a child that drops into its own session, scratch directory, scrubbed
environment and resource limits before serving (course.sandbox.child).

Protocol on the control socket: the grader sends a JSON request with the learner's socket
end attached (SCM_RIGHTS); the zygote answers with the child's pid as JSON.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys


def _preload() -> None:
    """Import what every learner process needs, without starting any thread pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import course.sandbox.child  # noqa: F401

    torch.set_num_threads(1)
    # First use of these loads more of torch (symbolic shapes, meta kernels): pay it once here.
    torch.broadcast_shapes((3, 1), (3, 4))
    for device in ("cpu", "meta"):
        x = torch.ones(2, 3, device=device)
        y = torch.softmax(x @ x.T * 2 + x.sum(), dim=-1).masked_fill(torch.ones(2, 2, dtype=torch.bool, device=device), 0)
        y = y[torch.zeros(1, dtype=torch.long, device=device)].clamp(-1, 1).where(y > 0, y).gather(0, torch.zeros(1, 2, dtype=torch.long, device=device))
        torch.cat((x, x.half().float().to(torch.bfloat16).float()), dim=-1).sin().cos()
        del x, y
    torch.nn.Embedding(2, 2)(torch.tensor([0, 1]))


def _reap(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _become_learner(request: dict, fd: int) -> None:
    """In the forked child: isolate, limit, then serve until the grader hangs up."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    memory = request["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (request["file_mb"] * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from course.sandbox import child

    child.serve(socket.socket(fileno=fd))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _preload()
    signal.signal(signal.SIGCHLD, _reap)
    control.sendall(b"ready\n")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 65536, 1)
        except InterruptedError:
            continue
        if not message:
            return  # the grader went away
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            control.close()
            try:
                _become_learner(request, fds[0])
            finally:
                os._exit(0)
        os.close(fds[0])
        control.sendall(json.dumps({"pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    main()


class ZygoteClient:
    """The grader's handle on one zygote process (started on first use, shared by sandboxes)."""

    def __init__(self, env: dict):
        import subprocess
        import threading

        self._lock = threading.Lock()
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "course.sandbox.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        theirs.close()
        if self._control.recv(64) != b"ready\n":
            raise RuntimeError("the sandbox fork server did not start")

    def spawn(self, request: dict, learner_end: socket.socket) -> int:
        """Fork a learner process serving on `learner_end`; return its pid."""
        with self._lock:
            socket.send_fds(self._control, [json.dumps(request).encode()], [learner_end.fileno()])
            reply = self._control.recv(4096)
        if not reply:
            raise RuntimeError("the sandbox fork server stopped")
        return int(json.loads(reply)["pid"])
