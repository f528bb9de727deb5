"""The fast paths of issue #13 grade exactly what the slow ones do.

The nbgrader bridge keeps its learner process between grade cells of one kernel
(course.grading.grader.WarmSandboxes): a later call runs only the cells executed since and
grades in a snapshot of the process (course.sandbox.learner_process.Sandbox.snapshot). Here:
a snapshot's changes are gone after it; a kept process grades the kernel's *current* cells
(a fix re-graded gets the new grade, a regression loses it); nothing is left running when the
kernel dies.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from course.grading.grader import WarmSandboxes, grade_files
from course.sandbox.learner_process import Sandbox

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


def _call(sandbox: Sandbox, name: str):
    return sandbox.request({"op": "call", "target": {"__global__": name}, "args": [], "kwargs": {}})["result"]


def test_a_snapshot_leaves_the_process_as_it_was():
    sandbox = Sandbox([("1", "calls = [0]\ndef bump():\n    calls[0] += 1\n    return calls[0]\n")])
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

    sandbox = Sandbox([("1", "import os\ndef die():\n    os._exit(3)\n")])
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
    warm = WarmSandboxes()
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


def test_a_grading_that_writes_files_is_not_kept(tmp_path):
    writes = RIGHT + "\n_real = rope_inv_freq\ndef rope_inv_freq(d, base=10000.0):\n" \
                     "    open('trace.txt', 'a').write('x')\n    return _real(d, base)\n"
    warm = WarmSandboxes()
    try:
        report = grade_files([_notebook(tmp_path / "a", [writes])], only=[EXERCISE], warm=warm)
        assert _score(report) == 1.0
        assert not warm._kept  # the snapshot wrote in the working directory: the next call starts afresh
    finally:
        warm.close()


KERNEL = textwrap.dedent('''
    """A notebook kernel in miniature: runs cells in IPython, grade cells through the bridge."""
    import io, contextlib, json, os, sys
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    for line in sys.stdin:
        cell = json.loads(line)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            result = shell.run_cell(cell, store_history=True)
        from course.platforms import nbgrader_bridge
        grader = nbgrader_bridge._GRADER
        print(json.dumps({"result": result.result if isinstance(result.result, (int, float)) else None,
                          "error": type(result.error_in_exec).__name__ if result.error_in_exec else None,
                          "grader": grader._proc.pid if grader else None}), flush=True)
''')


def _grade_cell(exercise_id: str) -> str:
    return f"from course.nbgrader_bridge import grade_exercise\ngrade_exercise({exercise_id!r})\n"


class _Kernel:
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.py").write_text(KERNEL)
        env = {k: v for k, v in os.environ.items() if k != "COURSE_SANDBOX"}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen([sys.executable, str(folder / "kernel.py")], cwd=folder, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def run(self, cell: str) -> dict:
        self.proc.stdin.write(json.dumps(cell) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_bridge_regrades_the_kernels_current_cells_and_leaves_nothing_when_the_kernel_dies(tmp_path):
    kernel = _Kernel(tmp_path / "student")
    try:
        assert kernel.run(BLANK)["error"] is None
        first = kernel.run(_grade_cell(EXERCISE))
        assert first["error"] == "GradingFailed" and first["grader"]
        assert kernel.run(RIGHT)["error"] is None  # the learner fixes the function, re-runs the grade cell
        fixed = kernel.run(_grade_cell(EXERCISE))
        assert fixed == {"result": 1.0, "error": None, "grader": first["grader"]}  # same warm grader
        assert kernel.run(_grade_cell(EXERCISE)) == fixed  # graded again: the same grade
        assert kernel.run(WRONG)["error"] is None  # and breaks it again
        assert kernel.run(_grade_cell(EXERCISE))["result"] < 1.0
        processes = _descendants(kernel.proc.pid)
        assert first["grader"] in processes and len(processes) >= 3  # grader, fork server, kept learner
    finally:
        kernel.proc.send_signal(signal.SIGKILL)  # the kernel dies without a word
        kernel.proc.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(map(_running, processes)):
        time.sleep(0.2)
    assert not [p for p in processes if _running(p)], "processes left behind by a dead kernel"
