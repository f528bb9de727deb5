"""The grader's side of the fork server (course.sandbox.fork_server): one per grader process,
started on first use (or early, in the background) and shared by its sandboxes."""
from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

from course.sandbox.confinement import WITHOUT_ENV, scrubbed_env


class ForkServerGone(RuntimeError):
    """The fork server stopped or stopped answering."""


class ForkServerClient:
    """The grader's handle on one fork server process (started on first use, shared by sandboxes)."""

    REPLY_SECONDS = 120.0

    def __init__(self, env: dict):
        import subprocess

        self._lock = threading.Lock()
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # The fork server imports `course` from the grader's own copy, and nothing else from its folder.
        bootstrap = (
            "import importlib.util, os, sys, types\n"
            f"package = {package!r}\n"
            "init = os.path.join(package, '__init__.py')\n"
            "if os.path.exists(init):\n"
            "    spec = importlib.util.spec_from_file_location('course', init, submodule_search_locations=[package])\n"
            "    module = importlib.util.module_from_spec(spec)\n"
            "    sys.modules['course'] = module\n"
            "    spec.loader.exec_module(module)\n"
            "else:  # a namespace package\n"
            "    module = types.ModuleType('course')\n"
            "    module.__path__ = [package]\n"
            "    sys.modules['course'] = module\n"
            "from course.sandbox.fork_server import main\n"
            "main()\n"
            "os._exit(0)  # its learners are gone: no second of tearing torch down after the grader has left\n"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", bootstrap, str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        theirs.close()
        self._control.settimeout(self.REPLY_SECONDS)
        try:
            ready = self._control.recv(64)
        except OSError:
            ready = b""
        if ready != b"ready\n":
            self.close()
            raise ForkServerGone("the sandbox fork server did not start")
        self.info = self._ask({"op": "info"})["info"]

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def _ask(self, request: dict, fds=()) -> dict:
        with self._lock:
            try:
                socket.send_fds(self._control, [json.dumps(request).encode()], list(fds))
                reply = self._control.recv(65536)
            except OSError as err:  # a late reply would answer the next request: end this server
                self._proc.kill()
                raise ForkServerGone(f"the sandbox fork server stopped answering ({err})") from None
        if not reply:
            raise ForkServerGone("the sandbox fork server stopped")
        return json.loads(reply)

    def spawn(self, request: dict, learner_end: socket.socket) -> int:
        """Fork a learner process serving on `learner_end`; return its pid."""
        return int(self._ask(request, [learner_end.fileno()])["pid"])

    def kill(self, pid: int, wait: bool = False) -> int:
        """Kill learner `pid`, everything it started, and any stray (with `wait`: return once they are gone)."""
        return int(self._ask({"op": "kill", "pid": pid, "wait": wait})["killed"])

    def close(self) -> None:
        """Stop the fork server; it kills its learners first."""
        self._control.close()
        try:
            self._proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self._proc.kill()


_SHARED: ForkServerClient | None = None
_SHARED_LOCK = threading.Lock()


def shared_fork_server() -> ForkServerClient:
    """The fork server shared by every sandbox of this grader process (restarted if it died)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is not None and not _SHARED.alive():
            _SHARED = None
        if _SHARED is None:
            env = scrubbed_env(Path(tempfile.gettempdir()))
            if os.environ.get(WITHOUT_ENV):
                env[WITHOUT_ENV] = os.environ[WITHOUT_ENV]
            _SHARED = ForkServerClient(env)
        return _SHARED


def current_fork_server() -> ForkServerClient | None:
    """The shared fork server if one has been started (never starts one)."""
    return _SHARED


def forget_fork_server(server: ForkServerClient) -> None:
    """Stop `server` (killed or lost); the next shared_fork_server() starts a new one."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is server:
            _SHARED = None
    try:
        server.close()
    except Exception:  # noqa: BLE001
        pass


def start_in_background() -> None:
    """Start the shared fork server now, in a thread: its imports (torch, matplotlib) then run
    on another core while the grader imports its own; the first sandbox waits for it."""
    def start():
        try:
            shared_fork_server()
        except ForkServerGone:
            pass  # the first sandbox tries again and reports it

    threading.Thread(target=start, name="course-fork-server-start", daemon=True).start()
