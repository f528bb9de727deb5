"""The fast paths grade exactly what the slow ones do.

The nbgrader bridge keeps its learner process between grade cells of one kernel
(course.grading.grader.KeptLearners): a later call runs only the cells executed since and
grades in a snapshot of the process (course.sandbox.learner_process.LearnerProcess.snapshot). Here:
a snapshot's changes are gone after it, a crashing snapshot is a crash, and a kept process
grades the current cells exactly as a fresh one. tests/test_warm_bridge.py covers a real kernel,
gradings that change state (globals, files, hangs) and what is left when the grader ends.
"""
import json
import textwrap
from pathlib import Path

import pytest

from course.grading.grader import KeptLearners, grade_files
from course.sandbox.learner_process import LearnerProcess

ROOT = Path(__file__).resolve().parents[1]

RIGHT = textwrap.dedent('''
    import torch

    def rope_inv_freq(d, base=10000.0):
        if d <= 0 or d % 2:
            raise ValueError(f"d must be a positive even number, got d={d}")
        return 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
''')
WRONG = textwrap.dedent('''
    import torch

    def rope_inv_freq(d, base=10000.0):
        return 1.0 / (base ** (torch.arange(0, d, 1, dtype=torch.float32)[: d // 2] / d))
''')
BLANK = "def rope_inv_freq(d, base=10000.0):\n    raise NotImplementedError()\n"  # as released
EXERCISE = "rope.rope_inv_freq"


def _call(sandbox: LearnerProcess, name: str):
    return sandbox.request({"op": "call", "target": {"__global__": name}, "args": [], "kwargs": {}})["result"]


def test_a_snapshot_leaves_the_process_as_it_was():
    sandbox = LearnerProcess([("1", "calls = [0]\ndef bump():\n    calls[0] += 1\n    return calls[0]\n")])
    try:
        sandbox.start()
        for round_ in range(2):
            generation = sandbox.generation
            assert sandbox.snapshot()
            got = [_call(sandbox, "bump") for _ in range(3)]
            assert got == [1, 2, 3], (round_, got, generation, sandbox.generation, sandbox.process_output())
            assert sandbox.release()
        sandbox.extend([("2", "calls[0] = 10\n")])  # cells run after a snapshot change the process itself
        assert sandbox.snapshot()
        assert _call(sandbox, "bump") == 11
        assert sandbox.release()
        assert _call(sandbox, "bump") == 11 and _call(sandbox, "bump") == 12  # outside a snapshot: kept
    finally:
        sandbox.close()


def test_a_snapshot_that_crashes_is_reported_as_a_crash_and_not_kept():
    from course.sandbox.learner_process import SubmissionCrashed

    sandbox = LearnerProcess([("1", "import os\ndef die():\n    os._exit(3)\n")])
    try:
        sandbox.start()
        generation = sandbox.generation
        assert sandbox.snapshot()
        with pytest.raises(SubmissionCrashed, match="ended"):
            sandbox.request({"op": "call", "target": {"__global__": "die"}, "args": [], "kwargs": {}})
        assert sandbox.generation > generation  # restarted: a fresh process replaying the cells
        assert not sandbox.release()  # ... which the grading may have changed: not kept
    finally:
        sandbox.close()


def _notebook(folder: Path, cells: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "06_rope.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": code}
        for i, code in enumerate(cells)]}))
    return folder


def _score(report) -> float:
    (entry,) = report["exercises"]
    return entry["score"]


def test_kept_processes_grade_the_current_cells_exactly_as_fresh_ones(tmp_path):
    """Cells appended run in the kept process; each grade equals a fresh process's grade of the same
    cells, including the notes on cells that raised; other cells get a fresh process."""
    warm = KeptLearners()
    history = []
    steps = [[WRONG], ["x = 1 / 0"], [RIGHT], ["print('a demonstration')"], [WRONG]]
    try:
        for i, new in enumerate(steps):
            history += new
            folder = _notebook(tmp_path / f"call{i}", history)
            kept_before = len(warm._kept)
            warm_report = grade_files([folder], only=[EXERCISE], warm=warm)
            fresh_report = grade_files([_notebook(tmp_path / f"fresh{i}", history)], only=[EXERCISE])
            assert warm_report == fresh_report, (i, warm_report, fresh_report)
            assert len(warm._kept) == 1 and (i == 0 or kept_before == 1)
        assert _score(warm_report) < 1.0
        (kept,) = warm._kept.values()
        assert len(kept.cells) == len(history)  # each cell ran once in the kept process
        # Cells that are not a continuation (an edited history): a fresh process.
        report = grade_files([_notebook(tmp_path / "edited", [RIGHT])], only=[EXERCISE], warm=warm)
        assert _score(report) == 1.0
        (fresh,) = warm._kept.values()
        assert fresh is not kept and len(fresh.cells) == 1
    finally:
        warm.close()
