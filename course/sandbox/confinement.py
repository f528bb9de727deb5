"""The learner's confinement, applied in a child of the fork server (course.sandbox.fork_server)
before it serves (course.sandbox.child): own session, scratch directory, scrubbed environment,
resource limits and the layers of course.sandbox.isolation.
"""
from __future__ import annotations

import itertools
import os
import resource
import signal
import socket
import tempfile
from pathlib import Path

from course.sandbox import isolation

# Tests only: "landlock,uid" makes the fork server behave as on a platform without those layers
# (the grader's environment passes it on; a learner's process cannot set the grader's).
WITHOUT_ENV = "COURSE_TEST_WITHOUT_LAYERS"


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


INFO: dict = {}  # platform_info() of this fork server, filled once by it after the preload
_READS: dict = {}


def learner_reads(request: dict) -> tuple[list[str], list[str]]:
    """What a learner may read, given what the grader protects (cached: computed in the fork server)."""
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


def become_learner(request: dict, fd: int) -> None:
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
        if int(name) > 3:  # nothing of the fork server's stays open (fds 0-2, 3 = the channel)
            try:
                os.close(int(name))
            except OSError:
                pass
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # the fork server cached its own; use TMPDIR (the scratch folder)
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
        reads, exposed = learner_reads(request)
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
