"""Long-lived grading workers for course.batch.

``python -m course.platforms.batch_worker LIMITS_JSON [CORES]`` is one warm grader: it loads torch,
pytest, the hidden suites and the sandbox fork server once, then grades one learner per request.
With CORES (comma-separated), it and every process it starts run only on those cores.
After ``{"ready": true}`` it answers as ``course.grade --serve`` does (course.grading.grader.serve:
a JSON line per request). Its real stdout is kept for answers only: anything else the
process writes goes to stderr.

``GraderWorker`` is the batch's handle on one such process: it starts it, sends a learner,
waits at most a given time, and kills and replaces it when it hangs or dies, so a learner
who breaks the grader costs only their own report. Both the local pool and the Dask
workers (course.platforms.batch_dask) grade through it, so both give the same reports.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from course.grading.report import failed_report
from course.grading.request import GradeRequest
from course.grading.integrity import GradingRefused
from course.locations import REPO

STARTUP_SECONDS = 600.0  # warm-up on a loaded machine: imports, fork server, one suite
GRACE_SECONDS = 3.0      # between SIGTERM (closes the learner processes) and SIGKILL


class WorkerFailed(Exception):
    """The grading process died, hung, or answered nonsense."""


class WorkerStartFailed(WorkerFailed):
    """The grading process could not even start (the grader's problem, not a learner's)."""


# -- the worker process ---------------------------------------------------------------

def _watch_parent(parent: int) -> None:
    """Leave when the batch that started us is gone (killed runs must not leave graders behind)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(GRACE_SECONDS * 2)
            os._exit(1)


def _stop(*_) -> None:
    """SIGTERM: end the learner processes now (one may be looping), then leave. Closing goes
    through the fork server, whose lock this very thread may hold: give it two seconds, then
    leave anyway (the fork server also kills its learners when we are gone)."""
    from course.grading.grader import close_all_learners

    closer = threading.Thread(target=close_all_learners, daemon=True)
    closer.start()
    closer.join(2.0)
    os._exit(143)


def _serve(limits_json: str, cores: str = "", digest: str = "", allow_unconfined: str = "") -> None:
    """`digest`: the batch's course.grading.integrity.code_digest when it started (checked now and
    after each learner); `allow_unconfined`: "1" to grade where learners are not confined."""
    if cores and hasattr(os, "sched_setaffinity"):  # first: the fork server and the learners inherit it
        os.sched_setaffinity(0, {int(core) for core in cores.split(",")})
    from course.grading.grader import serve, warm_up
    from course.grading.integrity import CodeGuard, GradingRefused, require_confined
    from course.sandbox.limits import Limits

    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)          # stray prints (ours, torch's C++ side) must not corrupt the answers
    sys.stdout = sys.stderr
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    limits = Limits(**json.loads(limits_json))
    try:
        guard = CodeGuard(digest or None)
        if allow_unconfined != "1":
            require_confined(limits)
    except GradingRefused as err:
        answers.write(json.dumps({"ready": False, "refused": str(err)}) + "\n")
        answers.flush()
        sys.exit(3)
    warm_up(limits)
    answers.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    answers.flush()
    sys.exit(3 if serve(limits, sys.stdin, answers, guard) else 0)


# -- the batch's side -----------------------------------------------------------------

class GraderWorker:
    """One `python -m course.platforms.batch_worker` process, started on first use and replaced when broken."""

    def __init__(self, limits, name: str = "worker", log_path: Path | None = None, cores=None, digest: str = "",
                 allow_unconfined: bool = False):
        self.limits, self.name, self.log_path = limits, name, log_path
        self.cores = sorted(cores) if cores else []  # confine the grader (and what it starts) to these
        self.digest, self.allow_unconfined = digest, allow_unconfined  # see _serve
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self.started = 0  # how many processes this handle has started
        self.startup_seconds = 0.0  # how long the last start took (imports, fork server, warm-up)

    # process lifetime
    def _start(self) -> None:
        begin = time.monotonic()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "course.platforms.batch_worker", json.dumps(asdict(self.limits)),
                 ",".join(map(str, self.cores)), self.digest, "1" if self.allow_unconfined else ""],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                cwd=REPO,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        self._buffer = b""
        self.started += 1
        try:
            reply = self._read(time.monotonic() + STARTUP_SECONDS)
        except (TimeoutError, WorkerFailed) as err:
            reply = {"error": str(err) or "timed out"}
        if reply.get("refused"):
            self.kill()
            raise GradingRefused(reply["refused"])
        if not reply.get("ready"):
            self.kill()
            where = f" (see {self.log_path})" if self.log_path else ""
            raise WorkerStartFailed(f"{self.name}: the grader did not start: {reply.get('error')}{where}")
        self.startup_seconds = time.monotonic() - begin

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGTERM (the worker closes its learner processes), then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Let the worker finish and exit (end of input), else kill it."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # one request
    def _read(self, deadline: float) -> dict:
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self._proc.poll()
                raise WorkerFailed(f"the grading process ended (exit status {code})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as err:
            raise WorkerFailed(f"the grading process answered something that is not JSON ({err})") from None

    def grade(self, student_id: str, request: GradeRequest, timeout: float = 600.0) -> dict:
        """Grade one learner; raises TimeoutError or WorkerFailed (the process is then gone)."""
        if not self.alive():
            self._start()  # WorkerStartFailed propagates: nobody's submission is to blame
        try:
            self._proc.stdin.write((json.dumps({"id": student_id, "request": request.to_json()}) + "\n").encode())
            self._proc.stdin.flush()
            reply = self._read(time.monotonic() + timeout)
        except TimeoutError:
            self.kill()
            raise
        except (OSError, ValueError, WorkerFailed) as err:
            self.kill()
            raise WorkerFailed(str(err)) from None
        if reply.get("id") != student_id or not isinstance(reply.get("report"), dict):
            self.kill()
            raise WorkerFailed("the grading process answered for another request")
        return reply


def failure_report(why: str) -> dict:
    return failed_report(why)


def grade_student(worker: GraderWorker, student_id: str, request: GradeRequest, timeout: float,
                  retries: int = 1) -> dict:
    """A result record for one learner, whatever happens: the report, how long it took, and a
    status: 'graded', 'error' (the submission could not be graded: unreadable, or it made the
    grader hang or die even on a fresh process) or 'grader-failed' (not the learner's fault;
    graded again on the next run)."""
    begin = time.monotonic()
    why = ""
    for attempt in range(retries + 1):
        try:
            reply = worker.grade(student_id, request, timeout=timeout)
        except WorkerStartFailed as err:
            return {"status": "grader-failed", "report": failure_report(f"grading failed: {err}"),
                    "seconds": round(time.monotonic() - begin, 3), "attempts": attempt + 1}
        except TimeoutError:
            why = f"grading did not finish within {timeout:g} s"
            continue
        except WorkerFailed as err:
            why = f"grading stopped: {err}"
            continue
        report = reply["report"]
        status = "grader-failed" if reply.get("grader_failed") else "error" if report.get("error") else "graded"
        outcome = {"status": status, "report": report, "seconds": reply.get("seconds", 0.0),
                   "wall_seconds": round(time.monotonic() - begin, 3), "attempts": attempt + 1}
        return {**outcome, "refused": reply["refused"]} if reply.get("refused") else outcome
    spent = round(time.monotonic() - begin, 3)
    return {"status": "error", "report": failure_report(why), "seconds": spent, "wall_seconds": spent,
            "attempts": retries + 1}


if __name__ == "__main__":
    _serve(*sys.argv[1:5])
