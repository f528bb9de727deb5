"""The grader's side of the learner's process.

``LearnerProcess`` owns one child process at a time (course.sandbox.child, forked by the fork
server and confined by course.sandbox.confinement), with a scrubbed environment, a scratch
directory, a memory cap and time limits per call, cell, exercise and file. If the
learner's code hangs, crashes, or garbles the channel, its whole process tree is killed
(course.sandbox.reaper), a fresh process replays the cells that worked, and only the
tests that touched the broken code fail. ``SubmissionProxy`` is what the hidden suites
see: the learner's names, callable, returning copies. Nothing the learner's process says
is trusted beyond "these are my values": pass or fail is decided here, on copies.
"""
from __future__ import annotations

import builtins
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from course.locations import REPO, suites_dir
from course.sandbox import protocol, reaper
from course.sandbox.limits import Limits
from course.sandbox.scratch import ScratchWatch
from course.sandbox.cells import definitions_only, top_level_names
from course.sandbox.confinement import scrubbed_env
from course.sandbox.fork_client import ForkServerGone, current_fork_server, forget_fork_server, shared_fork_server


# Layers of course.sandbox.isolation to use where the platform has them (tests turn some off
# to check the fallbacks).
LAYERS = {"uid": True, "landlock": True, "seccomp": True}
SPAWN_SECONDS = 60.0        # generous: a fork takes milliseconds, but machines get busy
MAX_MESSAGE = 2000          # longest error message or traceback taken from the learner


class LearnerError(Exception):
    """An exception raised by the learner's code, re-raised in the grader with its built-in type."""

    learner_type = "Exception"
    learner_traceback = ""
    call = ""


class SubmissionTimeout(Exception):
    """The learner's code did not answer in time."""


class SubmissionCrashed(Exception):
    """The learner's process exited while running their code."""


class ProcessEnded(SubmissionCrashed):
    """The learner's process ended before it answered (not that it answered wrongly)."""


class SandboxError(RuntimeError):
    """The learner's process could not be started at all (a problem of the grader's machine)."""


_ERROR_CLASSES: dict[str, type] = {}


def _learner_error_class(builtin_name: str) -> type:
    if builtin_name not in _ERROR_CLASSES:
        base = getattr(builtins, builtin_name, Exception)
        if not (isinstance(base, type) and issubclass(base, Exception)):
            base = Exception  # SystemExit and friends must not stop the grader
        try:
            cls = type(f"Learner{base.__name__}", (LearnerError, base), {})
        except TypeError:  # built-ins with their own memory layout (OSError, ...)
            cls = LearnerError
        _ERROR_CLASSES[builtin_name] = cls
    return _ERROR_CLASSES[builtin_name]


def _seconds(t: float) -> str:
    return f"{t:.1f}".rstrip("0").rstrip(".")


def _process_ended(pid: int, sock: socket.socket) -> bool:
    """Whether the learner's process has ended: a zombie or gone (Linux), or its end of the channel closed."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[:1] in ([b"Z"], [b"X"]):
                    return True
        except FileNotFoundError:
            return True
        except OSError:
            pass
    return protocol.closed(sock)


def _holds_references(value) -> bool:
    """Whether a request names objects living in the learner's process (gone with it)."""
    if isinstance(value, dict):
        return "__ref__" in value or any(_holds_references(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_references(v) for v in value)
    return False


def clip_text(value, limit: int = MAX_MESSAGE) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit] + " [...]"


def protected_paths() -> tuple[list[str], str | None]:
    """(folders the learner must not read, the repository holding them or None)."""
    repo = REPO
    candidates = [suites_dir(), repo / "grader_tests", repo / "solutions", repo / "source_notebooks", repo / ".git"]
    protect = sorted({str(p.resolve()) for p in candidates if p.exists()})
    inside = any(Path(p).parent == repo for p in protect)
    return protect, (str(repo) if inside else None)


@dataclass
class CellOutcome:
    label: str
    error: str = ""     # what the learner's cell raised, if anything
    fatal: bool = False  # it hung or ended the process: only `kept` is replayed
    kept: str = ""       # after that, its definitions alone (course.sandbox.cells)
    kind: str = ""       # with an error: "raised", "hung" or "crashed"
    raised: str = ""     # "raised": the exception's type


@dataclass
class LearnerProcess:
    cells: list[tuple[str, str]]
    limits: Limits = field(default_factory=Limits)
    generation: int = 0
    last_mutated: list = field(default_factory=list)
    files: list = field(default_factory=list)  # (path in the working directory, file to copy there)
    module: dict | None = None  # {"file", "notebook"}: how the code is presented (course.sandbox.child)

    def __post_init__(self):
        self.outcomes: list[CellOutcome] = []
        self.definitions: list[tuple[str, str]] = []  # the grader's helpers, replayed after a restart
        self.isolation: dict = {}  # what confines the learner's process (course.sandbox.isolation)
        self._pid = None
        self._sock = None
        self._seq = 0
        self._scratch = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
        self._log = self._scratch / ".process-output.txt"
        self._started = time.monotonic()
        self._spent: dict[str, float] = {}
        self.exercise = ""
        self._cell_seconds = self.limits.cell_seconds
        self._cells_spent = 0.0  # seconds spent starting the process and running cells (start, extend)
        self._snapshot_of = None  # (seq of the snapshot request, generation, outcomes) while a snapshot answers
        self._watch = ScratchWatch(self._scratch, self.limits.scratch_mb, self._stop_over_cap)
        self._copy_files()

    def _copy_files(self) -> None:
        """Copy the learner's files into the working directory, readable by a learner running
        under a user id of its own; the learner's process can change only these copies."""
        work = self._scratch / "work"
        work.mkdir(mode=0o755, exist_ok=True)
        for relative, source in self.files:
            *folders, name = PurePosixPath(relative).parts
            target = work
            for part in folders:
                target = target / part
                target.mkdir(exist_ok=True)
                target.chmod(0o755)
            try:
                shutil.copyfile(source, target / name)
                (target / name).chmod(0o644)
            except OSError:
                pass  # gone or unreadable since it was listed: the code runs without it

    # -- the scratch cap (course.sandbox.scratch) ---------------------------
    def _stop_over_cap(self) -> None:
        """(From the watch's thread.) Kill the learner's process: the request waiting for it sees it end."""
        pid, server = self._pid, current_fork_server()
        if pid is not None and server is not None:
            try:
                server.kill(pid)
            except ForkServerGone:
                pass

    def _reset_scratch(self) -> None:
        """After the folder went over the cap: the learner's files alone (replayed cells write theirs again)."""
        shutil.rmtree(self._scratch / "work", ignore_errors=True)
        self._log.unlink(missing_ok=True)
        self._copy_files()
        self._watch.why = ""

    def _capped_exchange(self, message: dict, timeout: float, deadline: float) -> dict | None:
        """_exchange, failing when the folder is over the cap (during the request or after it)."""
        try:
            reply = self._exchange(message, timeout, deadline)
        except SubmissionCrashed:
            if self._watch.why:
                raise SubmissionCrashed(self._watch.message()) from None
            raise
        if self._watch.check():
            self._kill()
            raise SubmissionCrashed(self._watch.message())
        return reply

    # -- process lifetime -------------------------------------------------
    def _spawn(self) -> None:
        if self._watch.why:
            self._reset_scratch()
        parent, child = socket.socketpair()
        work = self._scratch / "work"
        work.mkdir(exist_ok=True)
        protect, repo = protected_paths()
        request = {"cwd": str(work), "env": scrubbed_env(work), "log": str(self._log), "module": self.module,
                   "memory_mb": self.limits.memory_mb, "file_mb": self.limits.file_mb,
                   "processes": self.limits.processes, "protect": protect, "repo": repo, "layers": dict(LAYERS)}
        try:
            for attempt in range(2):
                server = None
                try:
                    server = shared_fork_server()
                    self._pid = server.spawn(request, child)
                    break
                except ForkServerGone as err:
                    if server is not None:
                        forget_fork_server(server)  # killed or lost: start a new one once
                    if attempt:
                        raise SandboxError(f"the sandbox fork server cannot start learners ({err})") from None
        finally:
            child.close()
        self._sock = parent
        self.generation += 1
        try:
            hello = protocol.recv(parent, time.monotonic() + SPAWN_SECONDS)
        except Exception as err:  # noqa: BLE001
            self._kill()
            raise SandboxError(f"the learner's process did not start ({type(err).__name__}: {err})") from None
        self.isolation = hello.get("hello") if isinstance(hello, dict) and isinstance(hello.get("hello"), dict) else {}
        self._watch.start()

    def _kill(self, wait: bool = False) -> None:
        """Kill the learner's process and everything it started (daemons included); with
        `wait`, return once they are gone."""
        pid, self._pid = self._pid, None
        if pid is not None:
            server = current_fork_server()
            try:
                if server is None or not server.alive():
                    raise ForkServerGone("no fork server")
                server.kill(pid, wait)
            except ForkServerGone:
                reaper.kill_tree(pid)  # best effort from here: no subreaper keeps the tree together
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Kill every process of the submission (they are gone from /proc a few ms later)."""
        self._watch.close()
        self._kill()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _file_left(self) -> float:
        return self.limits.file_seconds - (time.monotonic() - self._started)

    def _file_used_up(self) -> SubmissionTimeout:
        return SubmissionTimeout(f"the time limit for this file ({self.limits.file_seconds:g} s for its cells and "
                                 f"every call into it) is used up")

    def start(self) -> None:
        """Start the learner's process and run every cell once, recording what each did."""
        begin = time.monotonic()
        self._spawn()
        self._cells_spent += time.monotonic() - begin
        self._cell_seconds = self.limits.cell_seconds
        cells, self.cells = self.cells, []
        self.extend(cells)

    def extend(self, cells) -> None:
        """Run more cells after those run so far (start() runs the first ones), recording what each did."""
        begin = time.monotonic()
        try:
            self._extend(cells)
        finally:
            self._cells_spent += time.monotonic() - begin

    def _extend(self, cells) -> None:
        for label, code in cells:
            self.cells.append((label, code))
            outcome = CellOutcome(label)
            timeout = min(self._cell_seconds, self._file_left())
            if timeout <= 0:
                outcome.error, outcome.fatal, outcome.kind = f"not run: {self._file_used_up()}", True, "hung"
                self.outcomes.append(outcome)
                continue
            try:
                self._raw({"op": "exec", "label": label, "code": code}, timeout)
            except LearnerError as err:
                outcome.error, outcome.kind, outcome.raised = f"{err.learner_type}: {err}", "raised", err.learner_type
            except SubmissionTimeout:
                outcome.error, outcome.fatal, outcome.kind = f"did not finish within {_seconds(timeout)} s", True, "hung"
                # Later cells often call the function that hung (demos, plots): a short limit
                # for them leaves the submission's time to the tests of the other exercises.
                self._cell_seconds = min(self._cell_seconds, self.limits.cell_seconds_after_hang)
            except SubmissionCrashed as err:
                outcome.error, outcome.fatal, outcome.kind = str(err), True, "crashed"
            self.outcomes.append(outcome)
            if outcome.fatal:
                outcome.kept, names = definitions_only(code)
                if names:
                    outcome.error += f"; kept its definitions ({', '.join(names)}) without the rest of the cell"
                self._restart_quietly()

    # -- snapshots: grading that leaves the process as the cells left it ------------
    def snapshot(self) -> bool:
        """From now on, requests go to a copy of the learner's process forked from it as it is now
        (course.sandbox.child); release() ends the copy and comes back to the process as it was,
        whatever the requests did meanwhile. False (and nothing changed) if it cannot make one."""
        try:
            value = self._raw({"op": "snapshot"}, min(self.limits.call_seconds, max(self._file_left(), 0.1)))
        except (LearnerError, SubmissionTimeout, SubmissionCrashed):
            return False
        if value != "snapshot":
            self._kill()
            return False
        self._snapshot_of = (self._seq, self.generation, len(self.outcomes))
        return True

    def release(self) -> bool:
        """End the copy made by snapshot(). True if the process is back as the cells left it; False
        if it is not (restarted meanwhile, or no clean answer): then it is killed, and a later
        request starts a fresh process replaying the cells."""
        seq, generation, outcomes = self._snapshot_of
        self._snapshot_of = None
        self.definitions, self.last_mutated, self.exercise, self._spent = [], [], "", {}
        if self._pid is None or self.generation != generation:
            self._kill()
            return False
        deadline = time.monotonic() + self.limits.call_seconds
        try:
            protocol.send(self._sock, {"op": "release", "seq": secrets.randbits(62)}, deadline)
            reply = protocol.recv(self._sock, deadline)
            clean = (isinstance(reply, dict) and reply.get("ok") is True and reply.get("value") == "resumed"
                     and type(reply.get("seq")) is int and reply["seq"] == seq and not protocol.pending(self._sock))
        except Exception:  # noqa: BLE001 - whatever went wrong, this process is not kept
            clean = False
        if not clean:
            self._kill()
            return False
        del self.outcomes[outcomes:]
        return True

    def reset_clock(self) -> None:
        """A new submission in the same process: the time limits start again, less the time its
        cells have taken so far (a fresh process would spend that time running them again)."""
        self._started = time.monotonic() - self._cells_spent
        self._spent = {}

    def ping(self) -> bool:
        """Whether the process is alive and answers cleanly, now (a kept process before reuse)."""
        if self._pid is None or self._snapshot_of is not None or protocol.pending(self._sock):
            return False
        try:
            return self._exchange({"op": "defined", "names": []}, 2.0, time.monotonic() + 2.0) == \
                {"ok": True, "value": {}, "seq": self._seq} and not protocol.pending(self._sock)
        except (SubmissionTimeout, SubmissionCrashed):
            return False

    def files_state(self, limit: int = 2000):
        """What the working directory holds (path, size, modification time of each entry), or None
        if it holds more than `limit` entries: a snapshot's writes there are not undone by release()."""
        state = []
        for folder, dirs, files in os.walk(self._scratch / "work"):
            for name in sorted(dirs + files):
                try:
                    info = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                state.append((os.path.join(folder, name), info.st_size, info.st_mtime_ns, info.st_mode))
            if len(state) > limit:
                return None
        return sorted(state)

    def _restart(self) -> None:
        """A fresh process with every cell replayed, but of those that hung or crashed only
        their definitions."""
        self._kill()
        self._spawn()
        for (label, code), outcome in zip(self.cells, self.outcomes):
            if outcome.fatal and not outcome.kept:
                continue
            timeout = min(self.limits.cell_seconds, self._file_left())
            if timeout <= 0:
                self._kill()
                raise self._file_used_up()
            try:
                self._raw({"op": "exec", "label": label, "code": outcome.kept if outcome.fatal else code}, timeout)
            except LearnerError:
                pass
            except (SubmissionTimeout, SubmissionCrashed) as err:
                if outcome.fatal:  # its definitions alone broke the process too
                    outcome.kept = ""
                else:
                    outcome.fatal, (outcome.kept, _) = True, definitions_only(code)
                    outcome.error = outcome.error or f"when run again: {err}"
                    outcome.kind = outcome.kind or ("hung" if isinstance(err, SubmissionTimeout) else "crashed")
                return self._restart()
        for label, code in self.definitions:
            self._raw({"op": "exec", "label": label, "code": code}, self.limits.call_seconds)

    def _restart_quietly(self) -> None:
        """Restart now (the time is charged to what broke the process); if that fails, the next request retries."""
        try:
            self._restart()
        except (LearnerError, SubmissionTimeout, SubmissionCrashed):
            self._kill()

    def defined(self, names) -> dict[str, str]:
        """Which of `names` exist in the learner's namespace, as 'class', 'callable' or 'value'.

        Never raises for what the learner's code did: if its process cannot answer, the
        names its code defines statically are assumed (their tests then say what fails)."""
        names = sorted(names)
        problem = ""
        for attempt in range(2):
            try:
                reply = self._raw({"op": "defined", "names": names}, self.limits.call_seconds)
                if isinstance(reply, dict) and all(k in names and isinstance(v, str) for k, v in reply.items()):
                    return dict(reply)
                problem = "its answer was not a list of names"
            except (LearnerError, SubmissionTimeout, SubmissionCrashed) as err:
                problem = str(err)
            if not attempt:
                self._kill()  # the next _raw starts a fresh process
        self.outcomes.append(CellOutcome("module", f"after your code ran, its process could not list what it "
                                                   f"defines ({problem})", kind="crashed"))
        found = {name for _, code in self.cells for name in top_level_names(code)}
        return {name: "callable" for name in names if name in found}

    def signatures(self, names):
        """The learner's process's report of the parameters `names` take (child's "signatures"), as
        it sent it: the caller validates it (course.grading.conventions.signatures.read_signatures).
        None if the process could not answer."""
        try:
            return self._raw({"op": "signatures", "names": sorted(names)}, self.limits.call_seconds)
        except (LearnerError, SubmissionTimeout, SubmissionCrashed):
            return None

    def add_definition(self, label: str, source: str) -> None:
        """Run grader-chosen code (an adapter) in the learner's namespace after their cells, now and
        after every restart. Raises LearnerError, SubmissionTimeout or SubmissionCrashed; code that
        failed is not replayed, and its process is replaced so that nothing it defined stays."""
        timeout = min(self.limits.cell_seconds, self._file_left())
        if timeout <= 0:
            raise self._file_used_up()
        try:
            self._raw({"op": "exec", "label": label, "code": source}, timeout)
        except LearnerError:
            self._kill()  # the next request starts a fresh process without it
            raise
        self.definitions.append((label, source))

    def process_output(self, limit: int = 2000) -> str:
        """The last of what the learner's process printed (for feedback on crashes)."""
        try:
            return self._log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    # -- requests ---------------------------------------------------------
    def _raw(self, message: dict, timeout: float):
        """One request and its reply; raises only LearnerError, SubmissionTimeout or SubmissionCrashed
        for anything the learner's process does (SandboxError if it cannot be started)."""
        if self._pid is not None and protocol.pending(self._sock):
            self._kill()  # bytes nobody asked for (a forgery, after the last reply was taken): start clean
        if self._pid is None:
            self._restart()
        deadline = time.monotonic() + timeout
        reply = self._capped_exchange(message, timeout, deadline)
        if reply is None:  # a reply to some other request: left over from earlier, or forged
            self._restart()  # so this request is asked once more, of a fresh process, before anyone is blamed
            reply = self._capped_exchange(message, timeout, deadline)
            if reply is None:
                self._kill()
                raise SubmissionCrashed("your code tampered with the grading channel")
        if protocol.pending(self._sock):
            self._kill()
            raise SubmissionCrashed("your code tampered with the grading channel (it wrote more than one reply)")
        if reply["ok"] is True:
            return reply.get("value")
        info = reply.get("error")
        if not isinstance(info, dict):
            self._kill()
            raise SubmissionCrashed("your code tampered with the grading channel")
        err = _learner_error_class(clip_text(info.get("builtin"), 100) or "Exception")(clip_text(info.get("message")))
        err.learner_type = clip_text(info.get("type"), 100) or "Exception"
        err.learner_traceback = clip_text(info.get("traceback"))
        raise err

    def _exchange(self, message: dict, timeout: float, deadline: float) -> dict | None:
        """Send `message` and read one reply by `deadline`: the reply, or None if it answers another request."""
        self._seq = secrets.randbits(62)  # unguessable: a reply cannot be forged ahead of its request
        payload = protocol.dumps({**message, "seq": self._seq})  # (a value it cannot send is the grader's error)
        try:
            protocol.send_bytes(self._sock, payload, deadline)
            reply = protocol.recv(self._sock, deadline)
        except (socket.timeout, TimeoutError):
            self._kill()
            raise SubmissionTimeout(f"did not finish within {_seconds(timeout)} s") from None
        except protocol.FrameTooLarge as err:
            self._kill()
            raise SubmissionCrashed(f"your code wrote something on the grading channel that is not a reply, "
                                    f"or returned a value too large to copy ({err})") from None
        except (protocol.ChannelClosed, OSError, EOFError) as err:
            self._kill()
            raise ProcessEnded("the Python process running your code ended") from err
        except Exception as err:  # noqa: BLE001 - a reply the safe loader refused
            self._kill()
            raise SubmissionCrashed(f"your code sent back something that is not plain data ({clip_text(str(err), 300)})") from None
        if (self._snapshot_of is not None and isinstance(reply, dict) and reply.get("value") == "resumed"
                and reply.get("seq") == self._snapshot_of[0]):
            # The snapshot ended (crashed) and the process it was copied from says so: as if it had ended.
            self._kill()
            raise ProcessEnded("the Python process running your code ended")
        if (not isinstance(reply, dict) or type(reply.get("seq")) is not int or reply["seq"] != self._seq
                or (reply.get("ok") is not True and reply.get("ok") is not False)):
            self._kill()
            return None
        return reply

    def set_exercise(self, exercise_id: str) -> None:
        self.exercise = exercise_id

    def request(self, message: dict, call: str = ""):
        """Send one request within the call, exercise and file time limits.

        A process that ended after its last reply (a thread of an earlier call may end it) is
        replaced before the request, charging no one; a request whose process ends before it answers
        is asked once more of a fresh process (the process may have been ending as it was sent),
        unless it names objects that lived in the old one. Only if that one ends too is the call blamed."""
        if self._pid is not None and _process_ended(self._pid, self._sock):
            self._restart_quietly()
        left_file = self._file_left()
        left_exercise = self.limits.exercise_seconds - self._spent.get(self.exercise, 0.0)
        if left_file <= 0:
            raise self._file_used_up()
        if left_exercise <= 0:
            raise SubmissionTimeout(f"the time limit for this exercise ({self.limits.exercise_seconds:g} s) is used up")
        timeout = min(self.limits.call_seconds, left_exercise, left_file)
        begin = time.monotonic()
        uncharged = 0.0  # seconds spent replacing a process ended before this request was answered
        try:
            try:
                return self._raw(message, timeout)
            except ProcessEnded:
                left = timeout - (time.monotonic() - begin)
                if _holds_references(message) or left <= 0:
                    raise
                restart = time.monotonic()
                self._restart()
                restarted = time.monotonic() - restart
                reply = self._raw(message, min(left, self._file_left()))
                uncharged = restarted  # (it answered: the process had not ended for this request)
                return reply
        except LearnerError as err:
            err.call = call
            raise
        except (SubmissionTimeout, SubmissionCrashed) as err:
            self._restart_quietly()
            text = str(err)
            if isinstance(err, SubmissionTimeout) and timeout < self.limits.call_seconds:
                text += f" (all that was left of the {_seconds(self.limits.exercise_seconds)} s for this exercise)" \
                    if timeout == left_exercise else f" (all that was left of the {_seconds(self.limits.file_seconds)} s for this file)"
            raise type(err)(f"{call}: {text}" if call else text) from None
        finally:
            self._spent[self.exercise] = self._spent.get(self.exercise, 0.0) + time.monotonic() - begin - uncharged


def isolation_status(limits: Limits | None = None) -> dict:
    """What confines a learner's process on this machine (see course.sandbox.isolation)."""
    sandbox = LearnerProcess([], limits or Limits())
    try:
        sandbox.start()
        return dict(sandbox.isolation)
    finally:
        sandbox.close()
