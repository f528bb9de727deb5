"""The nbgrader bridge's warm grader keeps the learner's process between grade cells
(course.grading.grader.KeptLearners): a later call runs only the cells executed since, and
grades in a snapshot of the process. Real kernels, graders and learner processes throughout:
each grading must give exactly what a fresh grader gives on the same cells, and no learner
process may outlive its grader.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course.grading.grader import KeptLearners, grade_files
from course.sandbox.limits import Limits
from course.sandbox.reaper import processes

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = (ROOT / "solutions" / "rope.py").read_text()
EXERCISE = "rope.rope_inv_freq"
STUB = "def rope_inv_freq(d, base=10000.0):\n    raise NotImplementedError\n"
FLOAT64 = ("def rope_inv_freq(d, base=10000.0):\n    if d % 2:\n        raise ValueError(f'd must be even, got d={d}')\n"
           "    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)\n")  # tests/bank: inv_freq_float64


def notebook(folder: Path, cells: list[str]) -> Path:
    """The bridge's scratch submission for `cells` (a notebook named as the rope section's own)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "06_rope.ipynb").write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": code} for i, code in enumerate(cells)]}))
    return folder


def fresh(tmp_path: Path, cells: list[str], limits: Limits, only=(EXERCISE,)) -> dict:
    """What a grader that keeps nothing gives."""
    folder = tmp_path / f"fresh-{time.monotonic_ns()}"
    return grade_files([notebook(folder, cells)], only=list(only), limits=limits)


def scores(report: dict) -> list:
    return [(e["id"], e["score"], e["max_score"]) for e in report["exercises"]]


def descendants(root: int) -> set[int]:
    table = processes()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, state) in table.items() if ppid in frontier and state not in "ZX"} - found
        found |= frontier
    return found


def learners(root: int) -> set[int]:
    """The learner processes (and snapshots of them) under process `root`."""
    found = set()
    for pid in descendants(root):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "course-learner":
                found.add(pid)
        except OSError:
            pass
    return found


def alive(pids) -> set[int]:
    table = processes()
    return {pid for pid in pids if pid in table and table[pid][1] not in "ZX"}


def wait_until(condition, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# -- (a) a kernel session: fix, re-grade, break, re-grade ---------------------------------------

def test_a_kernel_session_regrades_the_cells_it_has_now(tmp_path):
    """grade_exercise in one real kernel: a stub scores 0, the fixed function (its cell run again)
    full marks, a second call the same, the function broken again (a bank mistake) the lower grade;
    each as a fresh grader scores the same cells, and from the second call on the learner process
    is the one kept (same pid)."""
    from jupyter_client.manager import start_new_kernel

    work = tmp_path / "kernel"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(work), env=env, startup_timeout=120)
    grade = ("from course.nbgrader_bridge import grade_exercise\n"
             "try:\n"
             f"    print('POINTS', grade_exercise({EXERCISE!r}))\n"
             "except AssertionError:\n"
             "    print('POINTS', 0.0)\n")
    history: list[str] = []

    def run(code: str) -> str:
        out = []
        reply = kc.execute_interactive(code, timeout=240, output_hook=lambda msg: out.append(
            msg["content"].get("text", "") if msg["msg_type"] == "stream" else ""))
        assert reply["content"]["status"] == "ok", reply["content"]
        history.append(code)
        return "".join(out)

    def points() -> float:
        text = run(grade)
        return float(next(line.split()[1] for line in text.splitlines() if line.startswith("POINTS")))

    def grader_learners() -> set[int]:  # asked outside the history: not a cell the grader sees
        out = []
        kc.execute_interactive("import course.platforms.nbgrader_bridge as b\nprint('GRADER', b._GRADER._proc.pid)",
                               store_history=False, timeout=60, output_hook=lambda msg: out.append(
                                   msg["content"].get("text", "") if msg["msg_type"] == "stream" else ""))
        return learners(int("".join(out).split("GRADER")[1].split()[0]))

    limits = Limits()
    try:
        run(SOLUTION)
        run(STUB)
        expected = fresh(tmp_path, history + [grade], limits)["exercises"][0]["score"]
        assert points() == expected == 0.0
        first = grader_learners()
        assert len(first) == 1  # kept after the first call
        run(SOLUTION)  # the learner fixes it: the cell run again
        full = fresh(tmp_path, history + [grade], limits)["exercises"][0]
        assert full["score"] == full["max_score"] > 0
        assert points() == full["score"]
        assert grader_learners() == first  # the same process, extended
        assert points() == full["score"]
        run(FLOAT64)  # broken again
        lower = fresh(tmp_path, history + [grade], limits)["exercises"][0]["score"]
        assert 0 < lower < full["score"]
        assert points() == lower
        assert grader_learners() == first
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- (b) gradings that change state do not change the next grading ------------------------------

COUNTER = """
_calls = 0
_right = rope_inv_freq
def rope_inv_freq(d, base=10000.0):
    global _calls
    _calls += 1
    if _calls > 1:
        return _right(d, base) * 1.5
    return _right(d, base)
"""

FILE_COUNTER = """
import os
_right = rope_inv_freq
def rope_inv_freq(d, base=10000.0):
    with open("calls.txt", "a") as f:
        f.write("call\\n")
    with open("calls.txt") as f:
        calls = len(f.readlines())
    if calls > 1:
        return _right(d, base) * 1.5
    return _right(d, base)
"""

HANG = """
import time
_calls = 0
_right = rope_inv_freq
def rope_inv_freq(d, base=10000.0):
    global _calls
    _calls += 1
    if _calls == 2:
        time.sleep(60)
    return _right(d, base)
"""


@pytest.mark.parametrize("code, limits", [(COUNTER, Limits()), (FILE_COUNTER, Limits()),
                                          (HANG, Limits(call_seconds=3.0))],
                         ids=["global", "file", "hang-restart"])
def test_state_a_grading_leaves_does_not_reach_the_next(tmp_path, code, limits):
    """The learner's function changes state on every call (a global counter; a file in its working
    directory; a hang on the second call, so the grading restarts the process): three gradings in a
    row through one KeptLearners each give exactly the fresh grader's report, and later cells
    still extend the kept process."""
    cells = [SOLUTION, code]
    expected = fresh(tmp_path, cells, limits)
    got = expected["exercises"][0]
    assert 0 < got["score"] < got["max_score"] or code is HANG  # the state decides the grade
    warm = KeptLearners()
    try:
        for n in range(3):
            report = grade_files([notebook(tmp_path / f"warm-{n}", cells)], only=[EXERCISE], limits=limits, warm=warm)
            assert scores(report) == scores(expected), n
            assert report["exercises"][0]["feedback"] == expected["exercises"][0]["feedback"] or code is HANG, n
        if code is COUNTER:  # nothing outside the process changed: it was kept and reused
            assert len(warm._kept) == 1
        else:  # the grading wrote a file / restarted the process: not kept
            assert not warm._kept
        # a cell run after the gradings counts as in a fresh process
        cells = cells + ["_probe = rope_inv_freq(8)"]
        report = grade_files([notebook(tmp_path / "warm-last", cells)], only=[EXERCISE], limits=limits, warm=warm)
        assert scores(report) == scores(fresh(tmp_path, cells, limits))
    finally:
        warm.close()


def test_a_call_run_by_a_later_cell_counts_as_in_a_fresh_process(tmp_path):
    """The counter above, advanced by a later cell: the kept process, extended, grades as a fresh
    process running every cell (and differently from before the cell: the state matters)."""
    warm = KeptLearners()
    try:
        cells = [SOLUTION, COUNTER]
        before = grade_files([notebook(tmp_path / "w0", cells)], only=[EXERCISE], limits=Limits(), warm=warm)
        cells = cells + ["rope_inv_freq(8)\nrope_inv_freq(8)"]
        after = grade_files([notebook(tmp_path / "w1", cells)], only=[EXERCISE], limits=Limits(), warm=warm)
        assert scores(after) == scores(fresh(tmp_path, cells, Limits()))
        assert after["exercises"][0]["score"] < before["exercises"][0]["score"]
        assert len(warm._kept) == 1
    finally:
        warm.close()


# -- (c) no learner process outlives the grader ----------------------------------------------------

def _serve(tmp_path: Path, *options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "course.grade", "--serve", *options], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _ask(server: subprocess.Popen, folder: Path) -> dict:
    server.stdin.write(json.dumps({"request": {"paths": [str(folder)], "only": [EXERCISE], "keep": True}}) + "\n")
    server.stdin.flush()
    return json.loads(server.stdout.readline())


@pytest.mark.parametrize("end", ["stdin-closed", "killed", "killed-while-grading"])
def test_no_learner_process_outlives_the_grader(tmp_path, end):
    """A kept learner process (and, mid-grading, its snapshot) is gone a few seconds after the
    grader's stdin closes or the grader is killed with SIGKILL."""
    server = _serve(tmp_path, "--call-seconds", "120", "--exercise-seconds", "120")
    try:
        reply = _ask(server, notebook(tmp_path / "a", [SOLUTION]))
        assert reply["report"]["exercises"][0]["score"] == 1.0
        kept = learners(server.pid)
        assert len(kept) == 1
        if end == "killed-while-grading":  # the grading hangs in the snapshot
            hang = "import time\ndef rope_inv_freq(d, base=10000.0):\n    time.sleep(600)\n"
            server.stdin.write(json.dumps({"request": {"paths": [str(notebook(tmp_path / "b", [SOLUTION, hang]))],
                                                       "only": [EXERCISE], "keep": True}}) + "\n")
            server.stdin.flush()
            assert wait_until(lambda: len(learners(server.pid)) == 2, 60)  # the original and its snapshot
            kept = learners(server.pid)
        everything = descendants(server.pid)
        assert everything >= kept
        if end == "stdin-closed":
            server.stdin.close()
            assert server.wait(timeout=60) == 0
        else:
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=60)
        assert wait_until(lambda: not alive(everything), 30), alive(everything)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_serve_without_keep_keeps_nothing(tmp_path):
    """Requests without "keep" (course.batch's workers) close their learner processes as before."""
    server = _serve(tmp_path)
    try:
        server.stdin.write(json.dumps({"request": {"paths": [str(notebook(tmp_path / "a", [SOLUTION]))],
                                                   "only": [EXERCISE]}}) + "\n")
        server.stdin.flush()
        assert json.loads(server.stdout.readline())["report"]["exercises"][0]["score"] == 1.0
        assert wait_until(lambda: not learners(server.pid), 10)
    finally:
        server.stdin.close()
        server.wait(timeout=60)
