"""What a hidden test cell calls during ``nbgrader autograde``.

The cell runs in the student's kernel, so the grading itself happens in a separate
process: the code cells the kernel has run so far are written to a scratch notebook and
graded by ``python -m course.grade --serve`` (one grader per kernel, started on first use
and kept warm). The grader also keeps the learner process: a later call runs only the cells
executed since, then grades in a snapshot of that process, so it answers in well under a
second and grades exactly the kernel's current cells (course.grading.grader.KeptLearners).
The lesson's demonstrations among them, recognised by their text (course/demonstrations.json),
are marked as in the notebook, so the grader leaves out those grading does not need.
When the kernel ends, the grader's stdin closes and it ends with every process it started.
The points come back as the cell's value (nbgrader's partial credit); no
points raises, so the failure shows in the feedback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course.exercises import EXERCISES, NOTEBOOKS
from course.lesson import DEMO_KEY, DEMO_TAG, demo_fingerprint, lesson_demonstrations
from course.learner.selfcheck import SANDBOX_ENV


class GradingFailed(AssertionError):
    """The exercise earned no points; the message is the grader's feedback."""


def _executed_cells() -> list[str]:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("grade_exercise() runs inside a notebook kernel")
    return [code for code in shell.user_ns.get("In", [])[1:] if code.strip()]


def _metadata(code: str) -> dict:
    """A cell the kernel ran: marked as the lesson's demonstration it is, unedited (the grader may
    then leave it out, as from the notebook itself: course.grading.submission)."""
    from course.sandbox.cells import to_python

    if demo_fingerprint(to_python(code)) in lesson_demonstrations():
        return {"tags": [DEMO_TAG], DEMO_KEY: demo_fingerprint(code)}
    return {}


def scratch_submission(cells: list[str], exercise_id: str, folder: Path, beside: Path) -> Path:
    """`folder` made into what is graded: the kernel's cells as the exercise's own notebook, with
    copies of the other files of the notebook's folder `beside` (helper modules, data; notebooks
    left out, within the grader's size limits), as the notebook finds them in Jupyter."""
    from course.grading.staging import snapshot
    from course.sandbox.limits import Limits

    folder.mkdir(parents=True, exist_ok=True)
    with snapshot([], Limits().file_mb, beside=[beside]) as staged:  # read once, no link followed
        for relative, source in staged.copies:
            if source.suffix.lower() != ".ipynb":
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    notebook = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": _metadata(code), "execution_count": None,
                   "outputs": [], "source": code} for i, code in enumerate(cells)],
    }
    (folder / f"{NOTEBOOKS[EXERCISES[exercise_id].section]}.ipynb").write_text(json.dumps(notebook))
    return folder


class _Grader:
    """A `python -m course.grade --serve` process owned by this kernel."""

    def __init__(self):
        self._log = tempfile.TemporaryFile(mode="w+")
        # --allow-unconfined: this kernel runs the learner's code unconfined already (nbgrader's own way).
        self._proc = subprocess.Popen([sys.executable, "-m", "course.grade", "--serve", "--allow-unconfined"],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, text=True)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def grade(self, path: Path, exercise_id: str) -> dict:
        # "keep": the grader keeps the learner process, which then runs only the cells executed
        # since the last call and grades in a snapshot of itself (course.grading.grader.KeptLearners).
        request = {"paths": [str(path)], "only": [exercise_id], "keep": True}  # a course.grading.request.GradeRequest
        self._proc.stdin.write(json.dumps({"id": exercise_id, "request": request}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self._log.seek(0)
            raise RuntimeError(f"the course grader stopped: {self._log.read()[-2000:]}")
        return json.loads(line)["report"]


_GRADER: _Grader | None = None


def grade_exercise(exercise_id: str):
    """Grade one exercise from the kernel's executed cells; return the points earned."""
    global _GRADER
    if os.environ.get(SANDBOX_ENV):
        return None
    from course.grading.report import wrapped  # (not in the learner's process, which returned above)

    exercise = EXERCISES[exercise_id]
    if _GRADER is None or not _GRADER.alive():
        _GRADER = _Grader()
    with tempfile.TemporaryDirectory(prefix="course-nbgrader-") as folder:
        report = _GRADER.grade(scratch_submission(_executed_cells(), exercise_id, Path(folder), Path.cwd()), exercise_id)
    if report.get("error"):
        raise RuntimeError(f"the course grader failed: {report['error']}")
    entry = report["exercises"][0]
    print(f"{exercise_id}: {entry['score']:g} / {exercise.points:g} points")
    print(wrapped(entry["feedback"]))
    if entry["score"] <= 0:
        raise GradingFailed(f"{exercise_id}: no points.\n{wrapped(entry['feedback'])}")
    return entry["score"]
