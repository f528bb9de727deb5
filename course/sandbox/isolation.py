"""Confinement of the learner's process (Linux), applied by the freshly forked child.

Each layer is used where the platform allows it and reported in the status the child
sends to the grader (``LearnerProcess.isolation``); a layer the platform lacks is skipped, never
fatal:

- ``no_new_privs``: nothing the learner executes gains privileges (setuid binaries).
- ``uid``: when grading as root, the learner runs as a user id of its own
  (``UID_BASE + pid``, no groups), so it cannot write the grader's files, signal or
  trace the grader, and ``RLIMIT_NPROC`` caps its processes. If that user could not
  reach the Python installation (e.g. a pyenv under a private ``/root``), it keeps
  exactly one capability, ``CAP_DAC_READ_SEARCH`` (read any file), and Landlock below
  is what keeps it from reading the hidden files. Without root the learner keeps the
  grader's user.
- ``landlock`` (Linux 5.13+): the learner may read only the Python installation, the
  libraries it loaded, the learner's part of the ``course`` package (``LEARNER_COURSE``; it
  may list the package's folders), ``/usr``, ``/proc``, ``/sys`` and a few
  files of ``/etc`` and ``/dev``, and write only in its scratch directory. Hidden suites,
  solutions, source notebooks and the repository's ``.git`` are on no such path. Since
  Landlock ABI 4 it cannot open TCP connections; since ABI 6 it cannot signal processes
  outside its sandbox (the grader, the fork server, other learners) nor reach abstract unix
  sockets. It can never ptrace (or read ``/proc/PID/{mem,environ,fd}`` of) a process
  outside its sandbox.
- ``seccomp``: the learner cannot create sockets (so it cannot talk to a D-Bus,
  systemd, docker or X server socket on the machine) nor use io_uring (which could
  bypass that); nor make or join namespaces (``unshare``, ``clone`` with namespace flags,
  ``setns``; ``clone3`` answers ENOSYS, so glibc uses ``clone``), use the kernel keyring, eBPF,
  perf events or userfaultfd, change its personality (e.g. turn off address randomisation)
  or its CPU affinity (a pinned batch worker's learner stays on that worker's core).

Process-tree cleanup is in course.sandbox.reaper; time limits are enforced by the grader.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys
from pathlib import Path

LINUX = sys.platform.startswith("linux")
UID_BASE = 1_800_000_000  # learner uid = UID_BASE + its pid: unused by any account, unique per live learner

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CAP_DAC_READ_SEARCH = 2
SECBIT_ALL_ROOT_OFF = 0x1 | 0x2 | 0x4 | 0x8 | 0x40 | 0x80  # noroot, no_setuid_fixup, no_cap_ambient_raise, all locked

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.prctl.restype = ctypes.c_int
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> None:
    _check(libc().prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


# -- Landlock ----------------------------------------------------------------------
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers (0: none)."""
    if not LINUX or platform.machine() not in ("x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x"):
        return 0
    version = libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                             ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _file_rights(abi: int) -> int:
    return (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV) & _fs_rights(abi)


def landlock_restrict(abi: int, read: list[str], write: list[str], write_files: list[str],
                      list_only: list[str] = ()) -> None:
    """Confine this (single-threaded) process and its future children; irrevocable. `list_only`:
    folders whose entries it may list (not read, unless `read` says so)."""
    handled = _fs_rights(abi)
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(libc().syscall(SYS_LANDLOCK_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)),
                                    ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        rules = [(p, READ_ONLY) for p in read] + [(p, handled) for p in write] + \
                [(p, (FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE) & handled) for p in write_files] + \
                [(p, FS_READ_DIR) for p in list_only]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this machine does not have
            try:
                if not os.path.isdir(path):
                    access &= _file_rights(abi)
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
                _check(libc().syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                      rule, ctypes.c_uint32(0)), f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        _check(libc().syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(ruleset)


SYSTEM_READ = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/proc", "/sys",
               "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
               "/etc/group", "/etc/nsswitch.conf", "/etc/fonts", "/etc/mime.types",
               "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
DEV_WRITE = ["/dev/null", "/dev/full", "/dev/zero"]


def read_candidates() -> list[str]:
    """Where a learner's process may need to read: computed once in the warm fork server."""
    paths = set(SYSTEM_READ)
    for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        paths.add(p)
    paths.update(p for p in sys.path if p and os.path.isabs(p))
    paths.update(course_reads())
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:  # the shared libraries the interpreter loaded
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/") and not parts[5].rstrip().endswith("(deleted)"):
                    paths.add(os.path.dirname(parts[5].rstrip()))
    except OSError:
        pass
    return sorted(p for p in paths if os.path.exists(p))


# The part of the course package a learner's process reads: the sandbox's own modules, the
# self-check with its visible checks and the exercise table, and what grade cells import. Never
# the extrapolation lab, the probe nor the grader: learner code cannot wrap the course's own
# working implementations (course.lab has several) for points. course.adapting is there for
# adapters and conventions, which run in the learner's process.
LEARNER_COURSE = ("sandbox", "learner", "adapting", "zoo", "checking.py", "exercises.py", "lesson.py", "demonstrations.json",
                  "selfcheck.py", "nbgrader_bridge.py", "platforms/__init__.py", "platforms/nbgrader_bridge.py")


def course_packages() -> list[str]:
    """The folders of the `course` package (one, unless it is split as a namespace package)."""
    import course

    return [os.path.realpath(p) for p in course.__path__]


def course_reads() -> list[str]:
    """The files and folders of LEARNER_COURSE in each course folder, with their compiled modules."""
    import importlib.util

    paths = []
    for package in course_packages():
        for relative in LEARNER_COURSE:
            path = os.path.join(package, relative)
            if os.path.exists(path):
                paths.append(path)
            if path.endswith(".py") and os.path.exists(importlib.util.cache_from_source(path)):
                paths.append(importlib.util.cache_from_source(path))
    return paths


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _around(folder: Path, hidden: Path) -> list[Path]:
    """The entries of `folder` (an ancestor of `hidden`) but the one holding `hidden`, whose own
    entries but the one holding it are taken in turn, and so on down to `hidden` itself."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    kept = []
    for entry in entries:
        real = Path(os.path.realpath(entry))
        if real == hidden:
            continue
        kept += _around(real, hidden) if _inside(hidden, real) and real.is_dir() else [entry]
    return kept


def allowed_reads(candidates: list[str], protect: list[str], repo: str | None,
                  narrowed: list[str] = ()) -> tuple[list[str], list[str]]:
    """(candidates that expose none of `protect`, the protected paths still readable). A candidate
    holding a folder of `narrowed` (the course package, when installed in site-packages) is
    replaced by everything in it but that folder, so only the candidates naming its own parts
    open it."""
    secrets = [Path(os.path.realpath(p)) for p in protect]
    fences = secrets + ([Path(os.path.realpath(repo))] if repo else [])
    hidden = [Path(os.path.realpath(p)) for p in narrowed]
    keep, kept_real = [], []
    for c in candidates:
        real = Path(os.path.realpath(c))
        if real == Path("/"):
            continue
        if any(_inside(f, real) for f in fences) or any(_inside(real, s) for s in secrets):
            continue  # an ancestor of the repository or of a secret, or inside a secret
        parts = [real]
        for h in hidden:
            parts = [q for part in parts for q in (_around(part, h) if _inside(h, part) else [part])]
        for part in parts:
            keep.append(str(part))
            kept_real.append(Path(os.path.realpath(part)))
    exposed = [str(s) for s in secrets if any(_inside(s, k) for k in kept_real)]
    return keep, exposed


# -- privileges --------------------------------------------------------------------
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capset(mask: int) -> None:
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)(_CapData(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, mask & 0xFFFFFFFF),
                          _CapData(mask >> 32, mask >> 32, mask >> 32))
    _check(libc().capset(ctypes.byref(header), data), "capset")


def _last_cap() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def _drop_bounding(keep: int = -1) -> None:
    for cap in range(_last_cap() + 1):
        if cap != keep:
            try:
                prctl(PR_CAPBSET_DROP, cap)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise


def become_uid(uid: int, keep_read_all: bool) -> None:
    """As root: switch to `uid` (and gid), no supplementary groups, no capabilities but
    CAP_DAC_READ_SEARCH when `keep_read_all` (kept across exec via the ambient set)."""
    if keep_read_all:
        prctl(PR_SET_KEEPCAPS, 1)
    _drop_bounding(CAP_DAC_READ_SEARCH if keep_read_all else -1)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if keep_read_all:
        _capset(1 << CAP_DAC_READ_SEARCH)
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH)
        prctl(PR_SET_KEEPCAPS, 0)


def drop_root_capabilities() -> None:
    """Stay uid 0 but without any capability, now or after exec."""
    _drop_bounding()
    prctl(PR_SET_SECUREBITS, SECBIT_ALL_ROOT_OFF)
    _capset(0)


def probe_own_uid(uid: int, needed: list[str]) -> str:
    """Which way the learner can leave root: 'own' (a plain uid reads everything it needs),
    'own+read' (it needs CAP_DAC_READ_SEARCH to reach the interpreter), or 'root' (the
    kernel refused the uid: stay uid 0 without capabilities)."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            code = 1
            for path in needed:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    with open(path, "rb") as f:
                        f.read(1)
            code = 0 if os.access(os.path.realpath(sys.executable), os.X_OK) else 1
        except BaseException:  # noqa: BLE001 - anything means: no
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return {0: "own", 1: "own+read"}.get(code, "root")


# -- seccomp -------------------------------------------------------------------------
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Denied outright (EPERM): sockets and io_uring (which could bypass that); joining namespaces;
# the kernel keyring; eBPF; perf events; userfaultfd (stalls the kernel at will); moving the
# process to other cores (a pinned batch worker's learner stays on its core: course.cores).
_DENIED = {
    "x86_64": {"socket": 41, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
               "setns": 308, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
               "perf_event_open": 298, "userfaultfd": 323, "sched_setaffinity": 203},
    "aarch64": {"socket": 198, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                "setns": 268, "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280,
                "perf_event_open": 241, "userfaultfd": 282, "sched_setaffinity": 122},
}
_CLONE3 = 435  # its flags sit in a struct seccomp cannot read: ENOSYS, and glibc falls back to clone
_CLONE = {"x86_64": 56, "aarch64": 220}
_UNSHARE = {"x86_64": 272, "aarch64": 97}
_PERSONALITY = {"x86_64": 135, "aarch64": 92}
PERSONALITY_QUERY, PER_LINUX = 0xFFFFFFFF, 0  # the only personality() calls allowed: asking, and no change
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (NEWTIME, 0x80, only for unshare:
# in clone's flags that bit belongs to the exit signal)
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
CLONE_NEWTIME = 0x80

_LD_ABS, _JA, _JEQ, _JGE, _JSET, _RET = 0x20, 0x05, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000


def _bpf(rules: list, machine: str) -> list[tuple]:
    """A classic BPF program: `rules` are (syscall nr, test) with test "deny", "enosys",
    ("flags", mask): deny if the first argument has any bit of mask, or ("only", values): deny
    unless the first argument is one of values. Jumps are counted by a tiny assembler."""
    code: list = [("ld", 4), ("jeq", _AUDIT_ARCH[machine], 0, "deny"), ("ld", 0)]
    if machine == "x86_64":  # the x32 ABI numbers its syscalls from 0x40000000
        code.append(("jge", 0x40000000, "deny", 0))
    for i, (nr, test) in enumerate(rules):
        after = f"next{i}"
        if test in ("deny", "enosys"):
            code.append(("jeq", nr, test, 0))
            continue
        code.append(("jeq", nr, 0, after))
        code.append(("ld", 16))  # the low 32 bits of the first argument (flags, personality)
        if test[0] == "flags":
            code += [("jset", test[1], "deny", 0), ("ja", "allow")]
        else:
            code += [("jeq", v, "allow", 0) for v in test[1]] + [("ja", "deny")]
        code.append(("label", after))
    code += [("label", "allow"), ("ret", _ALLOW), ("label", "deny"), ("ret", _ERRNO | errno.EPERM),
             ("label", "enosys"), ("ret", _ERRNO | errno.ENOSYS)]
    where, n = {}, 0
    for ins in code:
        if ins[0] == "label":
            where[ins[1]] = n
        else:
            n += 1
    prog, n = [], 0
    for ins in code:
        if ins[0] == "label":
            continue
        n += 1
        jump = lambda target: 0 if target == 0 else where[target] - n  # noqa: E731 - forward, from the next
        if ins[0] == "ld":
            prog.append((_LD_ABS, 0, 0, ins[1]))
        elif ins[0] == "ret":
            prog.append((_RET, 0, 0, ins[1]))
        elif ins[0] == "ja":
            prog.append((_JA, 0, 0, jump(ins[1])))
        else:
            prog.append(({"jeq": _JEQ, "jge": _JGE, "jset": _JSET}[ins[0]], jump(ins[2]), jump(ins[3]), ins[1]))
    assert all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in prog)
    return prog


def seccomp_rules(machine: str) -> list:
    denied = [(nr, "deny") for nr in _DENIED[machine].values()]
    return [*denied, (_CLONE3, "enosys"), (_CLONE[machine], ("flags", CLONE_NAMESPACES)),
            (_UNSHARE[machine], ("flags", CLONE_NAMESPACES | CLONE_NEWTIME)),
            (_PERSONALITY[machine], ("only", (PERSONALITY_QUERY, PER_LINUX)))]


def seccomp_confine() -> bool:
    """Install the filter of seccomp_rules (needs no_new_privs): what it denies fails with EPERM,
    clone3 with ENOSYS. False if this platform has no such filter."""
    machine = platform.machine()
    if not LINUX or machine not in _AUDIT_ARCH:
        return False
    prog = _bpf(seccomp_rules(machine), machine)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    filters = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(len(prog), ctypes.cast(filters, ctypes.c_void_p))
    _check(libc().prctl(PR_SET_SECCOMP, 2, ctypes.addressof(fprog), 0, 0), "seccomp")
    return True


def set_process_name(name: str) -> None:
    if LINUX:
        buffer = ctypes.create_string_buffer(name.encode()[:15])
        libc().prctl(PR_SET_NAME, ctypes.addressof(buffer), 0, 0, 0)
