"""Fork server for learner processes.

Importing torch takes seconds; forking a process that already imported it takes
milliseconds. The zygote never runs learner code (nor imports the solutions or the hidden
suites): it imports the libraries, then for each request forks a child that confines
itself (own session, scratch directory, scrubbed environment, resource limits and the
layers of course.sandbox.isolation) before serving (course.sandbox.child).

Protocol on the control socket (SOCK_SEQPACKET, one JSON message per request):
- spawn: the request carries the learner's socket end (SCM_RIGHTS); the reply is
  ``{"pid": ...}``. The child first sends ``{"hello": <isolation status>}`` on its socket.
- ``{"op": "kill", "pid": ..., "wait": bool}``: kill that learner's whole process tree and
  any stray process re-parented to the zygote; the reply ``{"killed": n}`` comes once they
  are signalled (with ``wait``: once they are gone).
- ``{"op": "info"}``: what this platform allows (``{"info": {...}}``).
When the grader goes away, the zygote kills every learner and stray, then exits.
"""
from __future__ import annotations

import gc
import itertools
import json
import os
import resource
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

from course.sandbox import isolation, reaper


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


# Tests only: "landlock,uid" makes this fork server behave as on a platform without those layers
# (the grader's environment passes it on; a learner's process cannot set the grader's).
WITHOUT_ENV = "COURSE_TEST_WITHOUT_LAYERS"


def platform_info() -> dict:
    """What the learner's confinement can use here (computed once, after the preload)."""
    info = {"landlock_abi": 0, "uid_mode": "same", "reads": [], "subreaper": False}
    if not isolation.LINUX:
        return info
    without = os.environ.get(WITHOUT_ENV, "").split(",")
    try:
        info["landlock_abi"] = 0 if "landlock" in without else isolation.landlock_abi()
    except Exception:  # noqa: BLE001
        pass
    info["reads"] = isolation.read_candidates()
    if "uid" in without:
        info["uid_mode"] = "root"  # (as root: uid 0 without capabilities, as where no other uid is allowed)
    elif os.geteuid() == 0:
        import torch

        needed = [os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(torch.__file__)),
                  os.__file__, torch.__file__, *__import__("course").__path__]
        info["uid_mode"] = isolation.probe_own_uid(isolation.UID_BASE + os.getpid(), needed)
    try:
        isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
        info["subreaper"] = True
    except OSError:
        pass
    return info


INFO: dict = {}
_READS: dict = {}


def _allowed_reads(request: dict) -> tuple[list[str], list[str]]:
    """What a learner may read, given what the grader protects (cached: computed in the zygote)."""
    key = (tuple(request.get("protect", [])), request.get("repo"))
    if key not in _READS:
        _READS[key] = isolation.allowed_reads(INFO.get("reads", []), list(key[0]), key[1], isolation.course_packages())
    return _READS[key]


def _apply(status: dict, name: str, action) -> None:
    """One optional layer: applied, or the reason it is not, in the status."""
    try:
        result = action()
        status[name] = True if result is None else result
    except Exception as err:  # noqa: BLE001 - a layer the platform lacks is skipped
        status[name] = False
        status.setdefault("errors", []).append(f"{name}: {type(err).__name__}: {err}")


def _mapped_bytes() -> int:
    """Address space this process maps already (the preloaded libraries: about 1 GB with a CPU
    build of torch, several with a CUDA build). The learner's memory limit comes on top."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _become_learner(request: dict, fd: int) -> None:
    """In the forked child: confine, limit, then serve until the grader hangs up."""
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not death
    status = {"pid": os.getpid()}
    isolation.set_process_name("course-learner")
    layers = request.get("layers", {})
    cwd = request["cwd"]
    memory = _mapped_bytes() + request["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (request["file_mb"] * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _apply(status, "nofile", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sock_fd = os.dup2(fd, 3, inheritable=False) if fd != 3 else 3
    os.set_inheritable(sock_fd, False)
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else map(str, range(4, 256)):
        if int(name) > 3:  # nothing of the zygote's stays open (fds 0-2, 3 = the channel)
            try:
                os.close(int(name))
            except OSError:
                pass
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(request["env"])
    import tempfile

    tempfile.tempdir = None  # the zygote cached its own; use TMPDIR (the scratch folder)
    if isolation.LINUX:
        _apply(status, "subreaper", lambda: isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1))
        _apply(status, "oom_first", lambda: open("/proc/self/oom_score_adj", "w").write("1000") and None)
    # Leave root: an own uid (or none of root's capabilities).
    status["uid"] = "same"
    if os.geteuid() == 0:
        mode = INFO.get("uid_mode", "root") if layers.get("uid", True) else "root"
        if mode in ("own", "own+read"):
            uid = isolation.UID_BASE + os.getpid()
            try:
                # The working directory and its folders (the learner's files, copied by the grader,
                # or what an earlier process made): fchown through fwalk never follows a link.
                for _, _, _, folder in itertools.islice(os.fwalk(cwd, follow_symlinks=False), 1000):
                    os.fchown(folder, uid, uid)
                os.chmod(os.path.dirname(cwd), 0o711)
                resource.setrlimit(resource.RLIMIT_NPROC, (request.get("processes", 64),) * 2)
                isolation.become_uid(uid, keep_read_all=mode == "own+read")
                status["uid"] = mode
            except Exception as err:  # noqa: BLE001
                status.setdefault("errors", []).append(f"uid: {type(err).__name__}: {err}")
        if os.geteuid() == 0:
            _apply(status, "root_capabilities_dropped", isolation.drop_root_capabilities)
            status["uid"] = "root"
    if isolation.LINUX:
        _apply(status, "parent_death_kill", lambda: isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL))
        _apply(status, "no_new_privs", lambda: isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1))
    status["landlock"] = 0
    abi = INFO.get("landlock_abi", 0)
    if abi and layers.get("landlock", True) and status.get("no_new_privs"):
        reads, exposed = _allowed_reads(request)
        _apply(status, "landlock", lambda: isolation.landlock_restrict(abi, reads, [cwd], isolation.DEV_WRITE,
                                                                       isolation.course_packages()))
        if status["landlock"]:
            status["landlock"] = abi
            status["readable_protected"] = exposed
    if layers.get("seccomp", True) and status.get("no_new_privs"):
        _apply(status, "seccomp", isolation.seccomp_confine)
    from course.sandbox import child, protocol

    channel = socket.socket(fileno=sock_fd)
    protocol.send(channel, {"hello": status, "seq": 0})
    child.serve(channel, request.get("module"))


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
    isolation.set_process_name("course-zygote")
    # Everything loaded here lives as long as the learner processes: the garbage collector need
    # not walk it while it loads (0.25 s), nor afterwards in each child (that costs CPU and copies
    # the shared pages). Not collecting before freezing keeps about 2 MB of import-time garbage.
    gc.disable()
    _preload()
    INFO.update(platform_info())
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
                control.sendall(json.dumps({"info": {k: v for k, v in INFO.items() if k != "reads"}}).encode())
                continue
            _collect(learners)
            _allowed_reads(request)  # computed here once, not in every child
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    _become_learner(request, fds[0])
                finally:
                    os._exit(0)
            learners.add(pid)
            os.close(fds[0])
            control.sendall(json.dumps({"pid": pid}).encode())
    finally:
        for pid in list(learners):
            _kill(pid, learners, wait=False)
        _kill(-1, learners, wait=True)


class ZygoteGone(RuntimeError):
    """The fork server stopped or stopped answering."""


class ZygoteClient:
    """The grader's handle on one zygote process (started on first use, shared by sandboxes)."""

    REPLY_SECONDS = 120.0

    def __init__(self, env: dict):
        import subprocess

        self._lock = threading.Lock()
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # The zygote imports `course` from the grader's own copy, and nothing else from its folder.
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
            "from course.sandbox.zygote import main\n"
            "main()\n"
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
            raise ZygoteGone("the sandbox fork server did not start")
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
                raise ZygoteGone(f"the sandbox fork server stopped answering ({err})") from None
        if not reply:
            raise ZygoteGone("the sandbox fork server stopped")
        return json.loads(reply)

    def spawn(self, request: dict, learner_end: socket.socket) -> int:
        """Fork a learner process serving on `learner_end`; return its pid."""
        return int(self._ask(request, [learner_end.fileno()])["pid"])

    def kill(self, pid: int, wait: bool = False) -> int:
        """Kill learner `pid`, everything it started, and any stray (with `wait`: return once they are gone)."""
        return int(self._ask({"op": "kill", "pid": pid, "wait": wait})["killed"])

    def close(self) -> None:
        """Stop the zygote; it kills its learners first."""
        self._control.close()
        try:
            self._proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self._proc.kill()


# -- the grader's side: one fork server per grader process ------------------------------

def scrubbed_env(scratch: Path) -> dict:
    """The whole environment of a learner's process (and of the fork server)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch),
        "COURSE_SANDBOX": "1",
        # torch.compile returns the function as written: compiling takes ~50 s on a CPU, far over a
        # call's time limit, and the compiled code computes the same values.
        "TORCH_COMPILE_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


_SHARED: ZygoteClient | None = None
_SHARED_LOCK = threading.Lock()


def shared_zygote() -> ZygoteClient:
    """The fork server shared by every sandbox of this grader process (restarted if it died)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is not None and not _SHARED.alive():
            _SHARED = None
        if _SHARED is None:
            env = scrubbed_env(Path(tempfile.gettempdir()))
            if os.environ.get(WITHOUT_ENV):
                env[WITHOUT_ENV] = os.environ[WITHOUT_ENV]
            _SHARED = ZygoteClient(env)
        return _SHARED


def current_zygote() -> ZygoteClient | None:
    """The shared fork server if one has been started (never starts one)."""
    return _SHARED


def forget_zygote(zygote: ZygoteClient) -> None:
    """Stop `zygote` (killed or lost); the next shared_zygote() starts a new one."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is zygote:
            _SHARED = None
    try:
        zygote.close()
    except Exception:  # noqa: BLE001
        pass


def start_in_background() -> None:
    """Start the shared fork server now, in a thread: its imports (torch, matplotlib) then run
    on another core while the grader imports its own; the first sandbox waits for it."""
    def start():
        try:
            shared_zygote()
        except ZygoteGone:
            pass  # the first sandbox tries again and reports it

    threading.Thread(target=start, name="course-zygote-start", daemon=True).start()

