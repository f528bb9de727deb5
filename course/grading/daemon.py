"""A warm grader per user and per copy of the course, reused by ``python -m course.grade``.

The server (``python -m course.grading.daemon``, started detached by the first call that finds
none) imports the grader, the hidden suites and the fork server once, then grades one request at
a time on a Unix socket in a private folder: each request is one ``grade_files`` call with fresh
learner processes (never ``warm``), so its report is the one a cold grader gives. It leaves when
idle (``$COURSE_GRADE_DAEMON_IDLE`` seconds, default 600), on SIGTERM/SIGINT/SIGHUP, on
``course.grade --stop-daemon``, or when the course's code changes, closing its learner processes
and removing its socket.

The client (``grade_remotely``) never loses or changes a grade: on any doubt (no server, a
refused folder, a dead or slow server, a malformed reply) it returns None and the caller grades
in-process. The socket's name holds ``fingerprint()``: another checkout, interpreter, or an
edited course file or suite means another server.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from course.locations import suites_dir
from course.sandbox.limits import Limits

DIR_ENV = "COURSE_GRADE_DAEMON_DIR"      # where servers live (tests: a temporary folder)
IDLE_ENV = "COURSE_GRADE_DAEMON_IDLE"    # seconds without a request before a server leaves
SWITCH_ENV = "COURSE_GRADE_DAEMON"       # "0": never use a server; "1": use one (as --daemon)
DEBUG_ENV = "COURSE_GRADE_DAEMON_DEBUG"  # set: one line on stderr saying who graded
IDLE_SECONDS = 600.0
MARGIN_SECONDS = 120.0   # beyond the submission's own time limits, before the client gives up
CONNECT_SECONDS = 2.0
CHECK_SECONDS = 2.0      # how often an idle server looks for changed code
FAILED_SECONDS = 600.0   # after a server failed to start, none is started again for this long
MAX_LINE = 1 << 20
PROTOCOL = 1
PACKAGE = Path(__file__).resolve().parents[1]  # the `course` package this code belongs to
SUPPORTED = hasattr(socket, "AF_UNIX") and hasattr(socket, "SO_PEERCRED")


def log(message: str) -> None:
    """A line in the server's log (its stderr)."""
    print(f"{time.strftime('%H:%M:%S')} pid {os.getpid()}: {message}", file=sys.stderr, flush=True)


def debug(message: str) -> None:
    if os.environ.get(DEBUG_ENV):
        print(f"course.grade: {message}", file=sys.stderr, flush=True)


# -- where servers live ------------------------------------------------------------------

def private(folder: Path) -> bool:
    """A real folder (not a link) owned by this user, with no group or other permission."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def daemon_dir(create: bool = True) -> Path | None:
    """``$COURSE_GRADE_DAEMON_DIR``, else ``$XDG_RUNTIME_DIR/course-grade`` (when writable), else
    ``/tmp/course-grade-<uid>``; None when it is not private (see `private`) or cannot be made."""
    if os.environ.get(DIR_ENV):
        folder = Path(os.environ[DIR_ENV])
    elif os.environ.get("XDG_RUNTIME_DIR") and os.access(os.environ["XDG_RUNTIME_DIR"], os.W_OK | os.X_OK):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "course-grade"
    else:
        folder = Path("/tmp") / f"course-grade-{os.getuid()}"
    if create:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return None
    if not private(folder):
        debug(f"not using {folder}: not a private folder of this user (mode 0700 needed)")
        return None
    return folder


def _code_files(root: Path, suffixes: tuple[str, ...]):
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(suffixes):
                yield Path(folder) / name


def fingerprint(package: Path = PACKAGE, suites: Path | None = None) -> str:
    """What a server's grading depends on: this interpreter, where the course is, and the path,
    size and modification time of every .py and .json of the package and .py of the suites
    (and the installed packages' folders, which change when one is installed or removed)."""
    import sysconfig

    suites = Path(suites) if suites is not None else suites_dir()
    digest = hashlib.sha256()
    head = [sys.executable, sys.version, str(Path(package).resolve()), str(suites.resolve()),
            os.environ.get("TMPDIR", "")]
    for folder in sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}):
        try:
            head.append(f"{folder}:{os.stat(folder).st_mtime_ns}")
        except OSError:
            head.append(f"{folder}:missing")
    digest.update("\0".join(head).encode())
    for root, suffixes in ((Path(package), (".py", ".json")), (suites, (".py",))):
        for path in _code_files(root, suffixes):
            try:
                info = path.stat()
            except OSError:
                continue
            digest.update(f"\0{path}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return digest.hexdigest()


def files_of(folder: Path, fp: str) -> dict[str, Path]:
    """The socket, pid file, lock and log of the server for fingerprint `fp`."""
    stem = folder / fp[:32]
    return {kind: stem.with_suffix(f".{kind}") for kind in ("sock", "pid", "lock", "log", "failed")}


def _take_lock(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on `path`, or None if another holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _read_line(conn: socket.socket, deadline: float) -> bytes:
    """One line from `conn` before `deadline` (b"" if it closes first; TimeoutError after)."""
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        conn.settimeout(left)
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
        if len(data) > 64 * MAX_LINE:
            raise ValueError("answer too long")
    return data.split(b"\n", 1)[0]


# -- the client ------------------------------------------------------------------------

def _connect(sock_path: Path) -> socket.socket:
    """A connection to the server at `sock_path`, checked to run as this user."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(CONNECT_SECONDS)
        conn.connect(str(sock_path))
        if _peer_uid(conn) != os.getuid():
            raise ConnectionError("the server runs as another user")
    except BaseException:
        conn.close()
        raise
    return conn


def _ask(sock_path: Path, request: dict, seconds: float) -> dict:
    """Send one request, return its JSON answer (OSError, ValueError, TimeoutError otherwise)."""
    deadline = time.monotonic() + seconds
    with _connect(sock_path) as conn:
        conn.settimeout(CONNECT_SECONDS)
        conn.sendall(json.dumps(request).encode() + b"\n")
        line = _read_line(conn, deadline)
    if not line:
        raise ConnectionError("the server closed the connection")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError("malformed answer")
    return answer


def _submission_files(paths: list[str]) -> int:
    """How many files a submission holds (a folder's notebooks and modules), for the time limit."""
    count = 0
    for path in paths:
        if os.path.isdir(path):
            count += sum(1 for _ in _code_files(Path(path), (".py", ".ipynb")))
        else:
            count += 1
    return max(1, count)


def _start_server(folder: Path, fp: str) -> None:
    """Start a server for the next call, detached, unless one is running or starting."""
    files = files_of(folder, fp)
    try:
        if time.time() - files["failed"].stat().st_mtime < FAILED_SECONDS:
            debug(f"the last warm grader for this code failed to start (see {files['log']})")
            return
    except OSError:
        pass
    lock = _take_lock(files["lock"])
    if lock is None:
        debug("a warm grader is starting")
        return
    import subprocess

    try:
        for kind in ("sock", "pid"):  # left by a server that was killed
            files[kind].unlink(missing_ok=True)
        with open(os.open(files["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log:
            subprocess.Popen([sys.executable, "-m", "course.grading.daemon", "--dir", str(folder),
                              "--fingerprint", fp, "--after-pid", str(os.getpid())],
                             cwd=str(PACKAGE.parent), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=log, start_new_session=True, close_fds=True)
        debug("started a warm grader for the next call")
    except OSError as err:
        debug(f"could not start a warm grader: {err}")
    finally:
        os.close(lock)


def grade_remotely(paths, only=None, limits: Limits | None = None, adapter=None) -> dict | None:
    """The report of a warm server, exactly as ``grade_files`` would give it here; None when
    there is no live server (then one is started for the next call) or on any doubt."""
    try:
        return _grade_remotely(paths, only, limits or Limits(), adapter)
    except Exception as err:  # noqa: BLE001 - whatever it is, the caller grades in-process
        debug(f"warm grader not used ({type(err).__name__}: {err}); grading here")
        return None


def _grade_remotely(paths, only, limits: Limits, adapter) -> dict | None:
    given = [str(p) for p in paths] + ([str(adapter)] if adapter else [])
    if not SUPPORTED or not all(os.path.exists(p) for p in given):
        return None  # a missing file's report names it as given: grade it here
    folder = daemon_dir()
    if folder is None:
        return None
    fp = fingerprint()
    sock_path = files_of(folder, fp)["sock"]
    absolute = [os.path.abspath(p) for p in paths]
    request = {"op": "grade", "protocol": PROTOCOL, "fingerprint": fp, "paths": absolute,
               "only": list(only) if only else None, "limits": asdict(limits),
               "adapter": os.path.abspath(adapter) if adapter else None}
    seconds = limits.submission_seconds * _submission_files(absolute) + MARGIN_SECONDS
    try:
        answer = _ask(sock_path, request, seconds)
    except (FileNotFoundError, ConnectionRefusedError):
        _start_server(folder, fp)
        return None
    except (OSError, ValueError, TimeoutError) as err:
        debug(f"warm grader failed ({type(err).__name__}: {err}); grading here")
        if isinstance(err, TimeoutError):  # stuck: stop it, so that it neither competes with this grading
            try:                            # nor keeps the next calls waiting
                _ask(sock_path, {"op": "stop", "protocol": PROTOCOL}, 5.0)
            except (OSError, ValueError, TimeoutError):
                pass
        return None
    report = answer.get("report")
    if answer.get("ok") is not True or answer.get("fingerprint") != fp or not isinstance(report, dict):
        debug(f"warm grader declined ({answer.get('error', 'malformed answer')}); grading here")
        return None
    text = json.dumps(report)
    if any(a != g and json.dumps(a)[1:-1] in text for a, g in zip(absolute + [request["adapter"]], given)):
        debug("the report names a path as the server saw it; grading here")
        return None
    debug(f"graded by the warm grader pid {answer.get('pid')} (request {answer.get('requests')})")
    return report


def _server_pid(files: dict[str, Path], fp: str) -> int | None:
    """The pid in the pid file, if that process is a server for `fp` still holding its lock."""
    lock = _take_lock(files["lock"]) if files["lock"].exists() else None
    if lock is not None:  # nobody holds it: no server
        os.close(lock)
        return None
    try:
        pid = int(json.loads(files["pid"].read_text())["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if b"course.grading.daemon" in cmdline and fp.encode() in cmdline else None


def stop_servers(wait_seconds: float = 15.0) -> list[int]:
    """Stop this user's server for this code (``course.grade --stop-daemon``); the pids stopped."""
    folder = daemon_dir(create=False)
    if folder is None or not SUPPORTED:
        return []
    fp = fingerprint()
    files = files_of(folder, fp)
    try:
        pid = int(_ask(files["sock"], {"op": "stop", "protocol": PROTOCOL}, 10.0)["stopping"])
    except (OSError, ValueError, TimeoutError, KeyError, TypeError):
        pid = _server_pid(files, fp)  # starting (no socket yet) or busy
        if pid is None:
            return []
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return []
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    return [pid]


def _running(pid: int) -> bool:
    """Process `pid` exists and is not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


# -- the server ------------------------------------------------------------------------

class Server:
    """One warm grader: an accepting thread answers status and stop at once and queues grade
    requests; the main thread grades them one at a time (pytest and signals live there)."""

    def __init__(self, folder: Path, fp: str, lock: int, idle_seconds: float):
        import queue

        self.folder, self.fp, self.lock, self.idle_seconds = folder, fp, lock, idle_seconds
        self.files = files_of(folder, fp)
        self.queue: queue.Queue = queue.Queue()
        self.requests = 0
        self.last = time.monotonic()
        self.listener: socket.socket | None = None

    def write_pid(self) -> None:
        from course.sandbox.zygote import current_zygote

        zygote = current_zygote()
        info = {"pid": os.getpid(), "zygote": zygote.pid if zygote is not None else None}
        partial = self.files["pid"].with_suffix(".pid.partial")
        partial.write_text(json.dumps(info))
        partial.replace(self.files["pid"])

    def cleanup(self) -> None:
        """Close the learner processes (at most two seconds: the fork server's lock may be held
        by the interrupted grading), then remove the socket and pid file."""
        if self.listener is not None:
            self.listener.close()
        for kind in ("sock", "pid"):
            self.files[kind].unlink(missing_ok=True)
        grader = sys.modules.get("course.grading.grader")
        if grader is not None:
            closer = threading.Thread(target=grader.close_all_sandboxes, daemon=True)
            closer.start()
            closer.join(2.0)

    def stop(self, signum, _frame) -> None:
        log(f"leaving: {signal.Signals(signum).name}")
        self.cleanup()
        os._exit(0)

    def listen(self) -> None:
        self.files["sock"].unlink(missing_ok=True)  # we hold the lock: any socket here is stale
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.files["sock"]))
        finally:
            os.umask(old)
        listener.listen(16)
        self.listener = listener
        self.files["failed"].unlink(missing_ok=True)
        threading.Thread(target=self.accept, name="course-daemon-accept", daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.receive, args=(conn,), daemon=True).start()

    def receive(self, conn: socket.socket) -> None:
        """Read one request: status and stop are answered here, grade requests queued."""
        try:
            if _peer_uid(conn) != os.getuid():
                conn.close()
                return
            request = json.loads(_read_line(conn, time.monotonic() + 30.0) or b"null")
            if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
                self.reply(conn, {"ok": False, "error": "unknown request"})
            elif request.get("op") == "status":
                self.reply(conn, {"ok": True, "pid": os.getpid(), "requests": self.requests, "fingerprint": self.fp})
            elif request.get("op") == "stop":
                self.reply(conn, {"ok": True, "stopping": os.getpid()})
                os.kill(os.getpid(), signal.SIGTERM)
            elif request.get("op") == "grade":
                self.queue.put((conn, request))
            else:
                self.reply(conn, {"ok": False, "error": "unknown request"})
        except (OSError, ValueError, TimeoutError):
            conn.close()

    @staticmethod
    def reply(conn: socket.socket, answer: dict) -> None:
        try:
            conn.settimeout(10.0)
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    def grade(self, request: dict) -> dict:
        """One grading, fresh learner processes; anything unexpected is declined (the client
        then grades in-process and reports it as a cold grader would)."""
        from course.grading.grader import grade_files

        if request.get("fingerprint") != self.fp:
            return {"ok": False, "error": "another version of the course"}
        if fingerprint() != self.fp:
            return {"ok": False, "error": "the course's code changed", "stale": True}
        try:
            report = grade_files(request["paths"], only=request.get("only"), limits=Limits(**request["limits"]),
                                 adapter=request.get("adapter"))
        except Exception as err:  # noqa: BLE001 - the client grades it again and reports it
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}
        self.requests += 1
        return {"ok": True, "report": report, "fingerprint": self.fp, "pid": os.getpid(), "requests": self.requests}

    def run(self) -> None:
        """Grade queued requests until idle for `idle_seconds` or the code changes."""
        import queue

        checked = time.monotonic()
        while True:
            try:
                conn, request = self.queue.get(timeout=0.5)
            except queue.Empty:
                now = time.monotonic()
                if now - self.last > self.idle_seconds:
                    log(f"leaving: no request for {self.idle_seconds:g} s")
                    return
                if now - checked > CHECK_SECONDS:
                    checked = now
                    if fingerprint() != self.fp:
                        log("leaving: the course's code changed")
                        return
                continue
            answer = self.grade(request)
            self.reply(conn, answer)
            self.last = time.monotonic()
            if answer.get("stale"):
                log("leaving: the course's code changed")
                return


def _wait_for(pid: int, seconds: float) -> None:
    """Wait until process `pid` (the call that started us, grading in-process) has ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.05)


def serve_forever(folder: Path, fp: str, after_pid: int | None, idle_seconds: float) -> int:
    """Be the server for `fp` in `folder` (exit status 0 also when another one already is)."""
    if not private(folder) or fingerprint() != fp:
        log("not starting: not a private folder, or the course's code changed")
        return 0
    lock = None
    for _ in range(20):  # a client may hold it for an instant, to see whether a server does
        lock = _take_lock(files_of(folder, fp)["lock"])
        if lock is not None:
            break
        time.sleep(0.05)
    if lock is None:
        log("not starting: another server for this code is running")
        return 0
    server = Server(folder, fp, lock, idle_seconds)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, server.stop)
    server.write_pid()
    if after_pid:
        _wait_for(after_pid, min(idle_seconds, 300.0))
    os.chdir(folder)
    try:
        from course.grading.grader import warm_up
        from course.sandbox.zygote import shared_zygote

        warm_up(Limits())
        shared_zygote()
    except BaseException:
        server.files["failed"].touch()  # the clients stop starting servers for a while
        server.cleanup()
        raise
    try:
        if fingerprint() != fp:  # changed while we imported it
            log("leaving: the course's code changed while warming up")
            return 0
        server.write_pid()
        server.listen()
        log(f"ready on {server.files['sock']}")
        server.last = time.monotonic()
        server.run()
    finally:
        server.cleanup()
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course.grading.daemon",
                                     description="A warm grader for course.grade (started by it; see its --help).")
    parser.add_argument("--dir", required=True, help="the private folder of this user's servers")
    parser.add_argument("--fingerprint", required=True, help="the course code's fingerprint this server grades for")
    parser.add_argument("--after-pid", type=int, help="start warming up once this process has ended")
    parser.add_argument("--idle-seconds", type=float,
                        default=float(os.environ.get(IDLE_ENV) or IDLE_SECONDS), help="leave after this long unused")
    args = parser.parse_args(argv)
    return serve_forever(Path(args.dir), args.fingerprint, args.after_pid, args.idle_seconds)


if __name__ == "__main__":
    sys.exit(main())
