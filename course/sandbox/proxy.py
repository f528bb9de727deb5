"""The grader's side of the learner's process.

``Sandbox`` owns one child process at a time (course.sandbox.child), with a scrubbed
environment, a scratch directory, a memory cap and time limits. If the learner's code
hangs or kills the process, the child is replaced and the cells that worked are replayed,
so one broken function costs only the tests that touch it. ``SubmissionProxy`` is what the
hidden suites see: the learner's names, callable, returning copies.
"""
from __future__ import annotations

import builtins
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from course.checking import call_text
from course.sandbox import protocol
from course.sandbox.zygote import ZygoteClient


@dataclass
class Limits:
    call_seconds: float = 10.0        # one call into the learner's code
    cell_seconds: float = 30.0        # one notebook cell while loading
    exercise_seconds: float = 30.0    # all calls made for one exercise
    submission_seconds: float = 300.0  # all calls and cells of one submission
    memory_mb: int = 4096              # address space of the learner's process
    file_mb: int = 64                  # largest file it may write


class LearnerError(Exception):
    """An exception raised by the learner's code, re-raised in the grader with its built-in type."""

    learner_type = "Exception"
    learner_traceback = ""
    call = ""


class SubmissionTimeout(Exception):
    """The learner's code did not answer in time."""


class SubmissionCrashed(Exception):
    """The learner's process exited while running their code."""


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


def _scrubbed_env(scratch: Path) -> dict:
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
        "PYTHONDONTWRITEBYTECODE": "1",
    }


_ZYGOTE: ZygoteClient | None = None
_ZYGOTE_LOCK = threading.Lock()


def _zygote() -> ZygoteClient:
    """The fork server shared by every sandbox of this grader process."""
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None:
            _ZYGOTE = ZygoteClient(_scrubbed_env(Path(tempfile.gettempdir())))
        return _ZYGOTE


@dataclass
class CellOutcome:
    label: str
    error: str = ""     # what the learner's cell raised, if anything
    fatal: bool = False  # it hung or ended the process: skipped on replay


@dataclass
class Sandbox:
    cells: list[tuple[str, str]]
    limits: Limits = field(default_factory=Limits)
    generation: int = 0
    last_mutated: list = field(default_factory=list)

    def __post_init__(self):
        self.outcomes: list[CellOutcome] = []
        self.definitions: list[tuple[str, str]] = []  # the grader's helpers, replayed after a restart
        self._pid = None
        self._sock = None
        self._scratch = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
        self._log = self._scratch / ".process-output.txt"
        self._started = time.monotonic()
        self._spent: dict[str, float] = {}
        self.exercise = ""

    # -- process lifetime -------------------------------------------------
    def _spawn(self) -> None:
        parent, child = socket.socketpair()
        work = self._scratch / "work"
        work.mkdir(exist_ok=True)
        request = {"cwd": str(work), "env": _scrubbed_env(work), "log": str(self._log),
                   "memory_mb": self.limits.memory_mb, "file_mb": self.limits.file_mb}
        try:
            self._pid = _zygote().spawn(request, child)
        finally:
            child.close()
        self._sock = parent
        self.generation += 1

    def _kill(self) -> None:
        if self._pid is not None:
            try:
                os.killpg(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._pid = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def start(self) -> None:
        """Start the learner's process and run every cell once, recording what each did."""
        self._spawn()
        for label, code in self.cells:
            outcome = CellOutcome(label)
            try:
                self._raw({"op": "exec", "label": label, "code": code}, self.limits.cell_seconds)
            except LearnerError as err:
                outcome.error = f"{err.learner_type}: {err}"
            except SubmissionTimeout:
                outcome.error, outcome.fatal = f"did not finish within {self.limits.cell_seconds:g} s", True
            except SubmissionCrashed as err:
                outcome.error, outcome.fatal = str(err), True
            self.outcomes.append(outcome)
            if outcome.fatal:
                self._restart()

    def _restart(self) -> None:
        """A fresh process with every cell replayed except those that hung or crashed."""
        self._kill()
        self._spawn()
        for (label, code), outcome in zip(self.cells, self.outcomes):
            if not outcome.fatal:
                try:
                    self._raw({"op": "exec", "label": label, "code": code}, self.limits.cell_seconds)
                except LearnerError:
                    pass
                except (SubmissionTimeout, SubmissionCrashed):
                    outcome.fatal = True
                    return self._restart()
        for label, code in self.definitions:
            self._raw({"op": "exec", "label": label, "code": code}, self.limits.call_seconds)

    def defined(self, names) -> dict[str, str]:
        """Which of `names` exist in the learner's namespace, as 'class', 'callable' or 'value'."""
        return self._raw({"op": "defined", "names": sorted(names)}, self.limits.call_seconds)

    def process_output(self, limit: int = 2000) -> str:
        """The last of what the learner's process printed (for feedback on crashes)."""
        try:
            return self._log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    # -- requests ---------------------------------------------------------
    def _raw(self, message: dict, timeout: float):
        if self._pid is None:
            self._restart()
        try:
            self._sock.settimeout(timeout)
            protocol.send(self._sock, message)
            reply = protocol.recv(self._sock)
        except (socket.timeout, TimeoutError):
            self._kill()
            raise SubmissionTimeout(f"did not finish within {timeout:g} s") from None
        except (protocol.ChannelClosed, OSError, EOFError) as err:
            self._kill()
            raise SubmissionCrashed("the Python process running your code ended") from err
        except Exception as err:  # noqa: BLE001 - a reply the safe loader refused
            self._kill()
            raise SubmissionCrashed(f"your code sent back something that is not plain data ({err})") from None
        if not isinstance(reply, dict) or "ok" not in reply:
            raise SubmissionCrashed("your code tampered with the grading channel")
        if reply["ok"]:
            return reply.get("value")
        info = reply.get("error") or {}
        err = _learner_error_class(str(info.get("builtin", "Exception")))(str(info.get("message", "")))
        err.learner_type = str(info.get("type", "Exception"))
        err.learner_traceback = str(info.get("traceback", ""))
        raise err

    def set_exercise(self, exercise_id: str) -> None:
        self.exercise = exercise_id

    def request(self, message: dict, call: str = ""):
        """Send one request within the call, exercise and submission time limits."""
        left_submission = self.limits.submission_seconds - (time.monotonic() - self._started)
        left_exercise = self.limits.exercise_seconds - self._spent.get(self.exercise, 0.0)
        if left_submission <= 0:
            raise SubmissionTimeout(f"the time limit for the whole submission ({self.limits.submission_seconds:g} s) is used up")
        if left_exercise <= 0:
            raise SubmissionTimeout(f"the time limit for this exercise ({self.limits.exercise_seconds:g} s) is used up")
        timeout = min(self.limits.call_seconds, left_exercise, left_submission)
        begin = time.monotonic()
        try:
            return self._raw(message, timeout)
        except LearnerError as err:
            err.call = call
            raise
        except (SubmissionTimeout, SubmissionCrashed) as err:
            raise type(err)(f"{call}: {err}" if call else str(err)) from None
        finally:
            self._spent[self.exercise] = self._spent.get(self.exercise, 0.0) + time.monotonic() - begin


def _to_wire(value):
    if isinstance(value, RemoteObject):
        return value._target
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, (list, tuple)):
        items = [_to_wire(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def _from_wire(value, sandbox: Sandbox, label: str):
    if isinstance(value, dict):
        if "__ref__" in value:
            return RemoteObject(sandbox, {"__ref__": value["__ref__"]}, f"{label} (a {value.get('__type__')})")
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy()
        if "__device__" in value:
            return torch.device(value["__device__"])
        return {k: _from_wire(v, sandbox, label) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v, sandbox, label) for v in value]
    if isinstance(value, tuple):
        return tuple(_from_wire(v, sandbox, label) for v in value)
    return value


class RemoteObject:
    """A function, class or object living in the learner's process."""

    def __init__(self, sandbox: Sandbox, target: dict, label: str):
        self._sandbox, self._target, self._label = sandbox, target, label
        self._generation = sandbox.generation

    def _check_alive(self):
        if "__ref__" in self._target and self._generation != self._sandbox.generation:
            raise SubmissionCrashed(f"{self._label} was lost when your code ended its process in an earlier call")

    def __call__(self, *args, **kwargs):
        self._check_alive()
        call = call_text(self._label, *args, **kwargs)
        reply = self._sandbox.request(
            {"op": "call", "target": self._target, "args": _to_wire(args), "kwargs": _to_wire(kwargs)}, call
        )
        self._sandbox.last_mutated = list(reply.get("mutated", []))
        return _from_wire(reply["result"], self._sandbox, call)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._check_alive()
        label = f"{self._label}.{attr}"
        value = self._sandbox.request({"op": "getattr", "target": self._target, "attr": attr}, label)
        return _from_wire(value, self._sandbox, label)

    def __repr__(self):
        return f"<learner's {self._label}>"


class SubmissionProxy:
    """The learner's submission as the hidden suites see it (the `submission` fixture)."""

    def __init__(self, sandbox: Sandbox, defined: dict[str, str]):
        self._sandbox, self._defined = sandbox, defined

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._defined:
            raise AssertionError(f"`{name}` is not defined in your submission")
        return RemoteObject(self._sandbox, {"__global__": name}, name)

    def defines(self, name: str) -> bool:
        return name in self._defined

    def define(self, name: str, source: str, label: str = "") -> RemoteObject:
        """Define a grader helper (e.g. a score function to pass to the learner's code) in the
        learner's process; `source` must define `name`. It survives restarts."""
        if name in self._defined:
            raise ValueError(f"{name} would shadow the learner's own definition")
        entry = (f"grader's {name}", source)
        if entry not in self._sandbox.definitions:
            self._sandbox.definitions.append(entry)
        self._sandbox.request({"op": "exec", "label": entry[0], "code": source}, f"defining {name}")
        return RemoteObject(self._sandbox, {"__global__": name}, label or name)

    def mutated_inputs(self) -> list[str]:
        """Arguments the last call changed in place, e.g. ['argument 1']."""
        return list(self._sandbox.last_mutated)

    def grads(self, module: RemoteObject, *args, upstream=None, **kwargs) -> dict:
        """Run module(*args), backpropagate `upstream` (default ones); gradients by parameter name."""
        module._check_alive()
        call = call_text(f"{module._label} forward/backward", *args, **kwargs)
        message = {"op": "grads", "target": module._target, "args": _to_wire(args), "kwargs": _to_wire(kwargs),
                   "upstream": upstream}
        return self._sandbox.request(message, call)

    def type_names(self, obj: RemoteObject, attr: str | None = None) -> list[str]:
        """Qualified class names along the MRO of obj (or of obj.attr)."""
        obj._check_alive()
        return self._sandbox.request({"op": "type_names", "target": obj._target, "attr": attr}, obj._label)
