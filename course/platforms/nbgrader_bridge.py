"""What a hidden test cell calls during ``nbgrader autograde``.

The cell runs in the student's kernel, so the grading itself happens in a separate
process: the code cells the kernel has run so far are written to a scratch notebook and
graded by ``python -m course.grade --serve`` (one grader per kernel, started on first use
and kept warm). The points come back as the cell's value (nbgrader's partial credit); no
points raises, so the failure shows in the feedback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from course.exercises import EXERCISES
from course.learner.selfcheck import SANDBOX_ENV


class GradingFailed(AssertionError):
    """The exercise earned no points; the message is the grader's feedback."""


def _executed_cells() -> list[str]:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("grade_exercise() runs inside a notebook kernel")
    return [code for code in shell.user_ns.get("In", [])[1:] if code.strip()]


def _scratch_notebook(cells: list[str], folder: Path) -> Path:
    notebook = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": code} for i, code in enumerate(cells)],
    }
    path = folder / "submission.ipynb"
    path.write_text(json.dumps(notebook))
    return path


class _Grader:
    """A `python -m course.grade --serve` process owned by this kernel."""

    def __init__(self):
        self._log = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([sys.executable, "-m", "course.grade", "--serve"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, text=True)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def grade(self, path: Path, exercise_id: str) -> dict:
        self._proc.stdin.write(json.dumps({"path": str(path), "only": [exercise_id]}) + "\n")
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
    exercise = EXERCISES[exercise_id]
    if _GRADER is None or not _GRADER.alive():
        _GRADER = _Grader()
    with tempfile.TemporaryDirectory(prefix="course-nbgrader-") as folder:
        report = _GRADER.grade(_scratch_notebook(_executed_cells(), Path(folder)), exercise_id)
    if report.get("error"):
        raise RuntimeError(f"the course grader failed: {report['error']}")
    entry = report["exercises"][0]
    print(f"{exercise_id}: {entry['score']:g} / {exercise.points:g} points")
    print(entry["feedback"])
    if entry["score"] <= 0:
        raise GradingFailed(f"{exercise_id}: no points.\n{entry['feedback']}")
    return entry["score"]
