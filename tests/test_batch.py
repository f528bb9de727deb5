"""Grading a class: python -m course.batch on real submissions (solved, blank, broken, looping,
process-killing, an nbgrader tree), resume after a deleted result and after SIGKILL, the grade
sheet and Gradescope files, and the same batch on a local Dask cluster."""
import contextlib
import csv
import fcntl
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from rich.console import Console

from course.cores import pin_one_core_each
from course.platforms.batch import discover, grade_sheet, run_batch
from course.platforms.batch_worker import GraderWorker
from course.exercises import EXERCISES, section_exercises
from course.sandbox.limits import Limits
from course.grading.request import GradeRequest
from tests.conftest import ROOT, source_notebook

# Small limits keep broken submissions cheap; correct code answers in milliseconds.
LIMITS = Limits(call_seconds=3.0, cell_seconds=5.0, exercise_seconds=3.0, file_seconds=60.0)
LIMIT_ARGS = ["--call-seconds", "3", "--cell-seconds", "5", "--exercise-seconds", "3", "--file-seconds", "60"]
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[^\n]*", re.S | re.M)
HIDDEN_REGION = re.compile(r"\n?### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)


def points(section):
    return float(sum(e.points for e in section_exercises(section)))


def blank_notebook(section: str, path: Path) -> Path:
    """The notebook as nbgrader releases it: solutions replaced by stubs, hidden tests removed."""
    nb = nbformat.read(source_notebook(section), as_version=4)
    for cell in nb.cells:
        source = HIDDEN_REGION.sub("", cell.source)
        cell.source = SOLUTION_REGION.sub(r"\1# YOUR CODE HERE\n\1raise NotImplementedError()", source)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def module_notebook(code: str, path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


CRASHER = """
import os

def rope_inv_freq(d, base=10000.0):
    while True:          # loops: costs this exercise only
        pass

def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    os._exit(3)          # kills the learner's process: costs this exercise only
"""


FRANK = (ROOT / "solutions" / "rope.py").read_text().replace(
    "import torch", "import torch\nfrom pathlib import Path\nBASE = float((Path(__file__).parent / 'base.txt').read_text())", 1)


@contextlib.contextmanager
def built_once(tmp_path_factory, name: str):
    """A folder shared by the xdist workers of this run, and whether it still has to be built
    (tests on both workers use it, so either may ask first)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder = shared / name
        yield folder, not (folder / ".built").exists()
        (folder / ".built").touch()


@pytest.fixture(scope="session")
def classroom(tmp_path_factory):
    """One file or folder per learner."""
    with built_once(tmp_path_factory, "batch-classroom") as (root, build):
        if build:
            _make_classroom(root)
    return root


def _make_classroom(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "solutions" / "rope.py", root / "alice.py")
    bob = root / "bob"
    blank_notebook("rope", bob / "06_rope.ipynb")
    shutil.copy(ROOT / "solutions" / "alibi.py", bob / "07_alibi.py")
    (bob / ".ipynb_checkpoints").mkdir()
    shutil.copy(ROOT / "solutions" / "scaling.py", bob / ".ipynb_checkpoints" / "old.py")  # not graded
    (root / "carol.ipynb").write_bytes(b'{"cells": [')                                     # not JSON
    (root / "dave.py").write_text(CRASHER)
    (root / "erin").mkdir()                                                               # nothing in it
    frank = root / "frank"  # code that reads a file of its own folder
    frank.mkdir()
    (frank / "base.txt").write_text("10000.0")
    (frank / "06_rope.py").write_text(FRANK)
    (root / "notes.txt").write_text("not a submission")


EXPECTED = {  # student -> (status, score, max_score)
    "alice": ("graded", points("rope"), points("rope")),
    "bob": ("graded", points("alibi"), points("rope") + points("alibi")),
    "carol": ("error", 0.0, 0.0),
    "dave": ("graded", None, points("rope")),
    "erin": ("error", 0.0, 0.0),
    "frank": ("graded", points("rope"), points("rope")),
}


CLASS_GROUP = pytest.mark.xdist_group("batch-class")  # the tests sharing the `graded` run


def summary_of(out: Path) -> dict:
    found = {}
    for path in sorted((out / "students").glob("*.json")):
        r = json.loads(path.read_text())
        found[r["student"]] = (r["status"], r["score"], r["max_score"],
                               tuple((e["id"], e["score"]) for e in r["exercises"]))
    return found


@pytest.fixture(scope="session")
def graded(classroom, tmp_path_factory):
    """The class graded once (tests copy the output before changing anything)."""
    with built_once(tmp_path_factory, "batch-graded") as (out, build):
        if build:
            summary = run_batch(classroom, out, workers=2, limits=LIMITS, progress=False)
            (out / "summary.json").write_text(json.dumps(summary))
    return out, json.loads((out / "summary.json").read_text())


def test_discovery_one_entry_per_learner(classroom):
    students, layout, ignored = discover(classroom)
    assert layout == "folder"
    assert [s.id for s in students] == ["alice", "bob", "carol", "dave", "erin", "frank"]
    bob = students[1]
    assert bob.names() == ["06_rope.ipynb", "07_alibi.py"]
    assert students[4].problem and not students[4].files
    assert [p.name for p in ignored] == ["notes.txt"]


@CLASS_GROUP
def test_every_learner_gets_a_result(graded):
    out, summary = graded
    assert summary["graded_now"] == 5 and summary["skipped"] == 0 and summary["nothing_to_grade"] == 1  # erin
    assert summary["counts"] == {"graded": 4, "error": 2, "grader-failed": 0}  # carol (unreadable) and erin
    assert summary["worker_cores"] == [sorted(c) for c in pin_one_core_each(2) if c]
    results = summary_of(out)
    assert sorted(results) == sorted(EXPECTED)
    for student, (status, score, max_score) in EXPECTED.items():
        got = results[student]
        assert got[0] == status, (student, got)
        assert got[2] == max_score, (student, got)
        if score is not None:
            assert got[1] == score, (student, got)
    # bob's two files were graded together: rope from the released notebook (zero), alibi in full
    bob = json.loads((out / "students" / "bob.json").read_text())
    assert {e["id"] for e in bob["exercises"]} == {e.id for s in ("rope", "alibi") for e in section_exercises(s)}
    assert {f: e["sections"] for f, e in bob["file_sections"].items()} == {"06_rope.ipynb": ["rope"],
                                                                             "07_alibi.py": ["alibi"]}
    assert all("NotImplementedError" in e["feedback"] for e in bob["exercises"] if e["id"].startswith("rope."))
    carol = json.loads((out / "students" / "carol.json").read_text())
    assert "not a readable notebook" in carol["error"]
    # dave looped in one function and killed his process in another: those two score 0 with a reason,
    # and the rest of his section is still graded (and fails: the other names are not defined)
    dave = {e["id"]: e for e in json.loads((out / "students" / "dave.json").read_text())["exercises"]}
    assert dave["rope.rope_inv_freq"]["score"] == 0 and "did not finish" in dave["rope.rope_inv_freq"]["feedback"]
    assert dave["rope.apply_rope"]["score"] == 0 and "ended" in dave["rope.apply_rope"]["feedback"]


@CLASS_GROUP
def test_grade_sheet(graded):
    out, _ = graded
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [r["student"] for r in rows] == list(EXPECTED)
    columns = [e.id for e in EXERCISES.values() if e.section in ("rope", "alibi")]
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert header == ["student", *columns, "total", "max_score", "status", "error"]
    for row in rows:
        assert float(row["total"]) == pytest.approx(sum(float(row[c] or 0) for c in columns))
        assert float(row["max_score"]) == points("rope") + points("alibi")
    by_student = {r["student"]: r for r in rows}
    alibi = [c for c in columns if c.startswith("alibi.")]
    assert {by_student["alice"][c] for c in alibi} == {""}   # never submitted: blank, not 0
    assert {by_student["bob"][c] for c in columns if c.startswith("rope.")} == {"0"}  # blank notebook: 0
    assert float(by_student["alice"]["total"]) == points("rope")
    assert by_student["carol"]["status"] == "error" and by_student["carol"]["error"]
    mask = os.umask(0)
    os.umask(mask)
    for path in (out / "grades.csv", out / "students" / "alice.json"):  # ordinary files, not private ones
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, oct(path.stat().st_mode)


@CLASS_GROUP
def test_gradescope_results(graded):
    out, _ = graded
    for student in EXPECTED:
        results = json.loads((out / "gradescope" / student / "results.json").read_text())
        record = json.loads((out / "students" / f"{student}.json").read_text())
        assert isinstance(results["score"], float) and results["score"] == record["score"]
        assert isinstance(results["execution_time"], int) and isinstance(results["output"], str)
        assert results["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert len(results["tests"]) == len(record["exercises"])
        for test, exercise in zip(results["tests"], record["exercises"]):
            assert set(test) >= {"name", "score", "max_score", "output", "status"}
            assert test["name"] == exercise["id"] and test["score"] == exercise["score"]
            assert test["max_score"] == exercise["max_score"] and test["output"] == exercise["feedback"]
            assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
        assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
    carol = json.loads((out / "gradescope" / "carol" / "results.json").read_text())
    assert carol["tests"] == [] and "not a readable notebook" in carol["output"]


@CLASS_GROUP
def test_rerun_skips_unchanged_and_regrades_only_a_missing_result(graded, classroom, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded[0], out)
    before = {p.name: p.read_text() for p in (out / "students").glob("*.json")}
    summary = run_batch(classroom, out, workers=2, limits=LIMITS, progress=False)
    assert summary["graded_now"] == 0 and summary["skipped"] == len(EXPECTED)
    assert {p.name: p.read_text() for p in (out / "students").glob("*.json")} == before

    (out / "students" / "alice.json").unlink()
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=160)
    summary = run_batch(classroom, out, workers=2, limits=LIMITS, progress=True, console=console)
    assert summary["graded_now"] == 1 and summary["skipped"] == len(EXPECTED) - 1
    shown = console.file.getvalue()  # the progress bar counts the skipped learners as done
    assert "grading" in shown and f"{len(EXPECTED)}/{len(EXPECTED)}" in shown, shown[-2000:]
    assert f"alice: {points('rope'):g}/{points('rope'):g}" in shown, shown[-2000:]
    (out / "students" / "alice.json").unlink()  # not a terminal (a log file): one line per learner
    log = Console(file=io.StringIO(), width=160)
    assert run_batch(classroom, out, workers=1, limits=LIMITS, progress=True, console=log)["graded_now"] == 1
    assert f"graded {len(EXPECTED)}/{len(EXPECTED)}: alice: {points('rope'):g}/{points('rope'):g}" in \
        log.file.getvalue().splitlines(), log.file.getvalue()
    after = {p.name: p.read_text() for p in (out / "students").glob("*.json")}
    assert {k: v for k, v in after.items() if k != "alice.json"} == {k: v for k, v in before.items() if k != "alice.json"}
    assert json.loads(after["alice.json"])["score"] == points("rope")
    # a learner who left the class: nothing graded, their results kept and named, not in the sheet
    smaller = tmp_path / "smaller"
    shutil.copytree(classroom, smaller)
    (smaller / "dave.py").unlink()
    summary = run_batch(smaller, out, workers=1, limits=LIMITS, progress=False)
    assert summary["graded_now"] == 0 and summary["stale"] == ["dave"]
    assert (out / "students" / "dave.json").exists() and (out / "gradescope" / "dave" / "results.json").exists()
    assert "dave" not in (out / "grades.csv").read_text()
    # a changed data file in a learner's folder is a changed submission: that learner only is graded again
    changed = tmp_path / "changed"
    shutil.copytree(classroom, changed)
    (changed / "frank" / "base.txt").write_text("10000")
    assert run_batch(changed, out, workers=1, limits=LIMITS, progress=False, dry_run=True)["graded_now"] == 1
    # other limits mean another grading: nobody is skipped (nothing is graded here: --only matches no file...)
    assert run_batch(classroom, out, workers=1, limits=LIMITS, progress=False, only=["rope.rope_inv_freq"],
                     dry_run=True)["graded_now"] == 5


def test_the_progress_bar_names_the_learners_being_graded():
    from course.platforms.batch import _Progress

    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=160)
    with _Progress(3, 0, True, console) as bar:
        bar.started("ana")
        bar.started("ben")
        assert re.fullmatch(r"grading ana \(\d+ s\), ben \(\d+ s\)", bar.line()), bar.line()
        bar.advance("ana: 2/2", "ana")
        assert re.fullmatch(r"ana: 2/2 \| grading ben \(\d+ s\)", bar.line()), bar.line()
    assert "grading ben" in console.file.getvalue()  # what the terminal showed


def test_workers_get_one_core_each_when_there_are_as_many_as_cores(monkeypatch):
    from course import cores

    monkeypatch.setattr(cores, "usable_cores", lambda: [3, 5])
    assert cores.available_cpus() <= 2
    monkeypatch.setattr(cores, "available_cpus", lambda: 2)
    assert cores.pin_one_core_each(2) == [{3}, {5}]
    assert cores.pin_one_core_each(1) == [None]  # alone, a worker's suites run while its cells run
    assert cores.pin_one_core_each(3) == [None] * 3
    monkeypatch.setattr(cores, "available_cpus", lambda: 1)  # a CPU quota of one core on two cores
    assert cores.pin_one_core_each(2) == [None, None]
    monkeypatch.setattr(cores, "available_cpus", lambda: 2)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)  # macOS: no CPU affinity at all
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(cores, "usable_cores", lambda: [0, 1])
    assert cores.pin_one_core_each(2) == [None, None]


def _cores_allowed(pid: int) -> str:
    return re.search(r"Cpus_allowed_list:\s*(\S+)", Path(f"/proc/{pid}/status").read_text()).group(1)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this system")
def test_a_pinned_worker_grades_on_its_core_and_so_do_the_processes_it_starts(tmp_path):
    core = max(os.sched_getaffinity(0))
    path = tmp_path / "rope.py"
    path.write_text((ROOT / "solutions" / "rope.py").read_text())
    worker = GraderWorker(LIMITS, cores={core})
    try:
        report = worker.grade("ana", GradeRequest((str(path),), limits=LIMITS))["report"]
        assert report["score"] == report["max_score"] == points("rope")
        started = [int(c) for t in Path(f"/proc/{worker._proc.pid}/task").iterdir()
                   for c in (t / "children").read_text().split()]
        assert started, "the worker's fork server is gone"
        assert {_cores_allowed(p) for p in [worker._proc.pid, *started]} == {str(core)}
    finally:
        worker.stop()
    assert _cores_allowed(os.getpid()) != str(core) or len(os.sched_getaffinity(0)) == 1  # ours is untouched


def _batch_workers(marker: str) -> list[int]:
    """Pids of grading workers started with our unusual memory limit (the test's own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "course.platforms.batch_worker" in cmdline and marker in cmdline:
                found.append(int(entry.name))
    return found


def test_sigkilled_batch_resumes_and_loses_nothing(tmp_path):
    submissions = tmp_path / "class"
    submissions.mkdir()
    for i in range(5):  # each takes a moment: a learner process that sleeps in one cell
        (submissions / f"s{i}.py").write_text("import time\ntime.sleep(1)\n" + (ROOT / "solutions" / "alibi.py").read_text())
    out = tmp_path / "out"
    memory = "3077"  # identifies this test's workers
    cmd = [sys.executable, "-m", "course.batch", str(submissions), "--out", str(out), "--workers", "1",
           "--memory-mb", memory, "--no-progress", *LIMIT_ARGS]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / "students").glob("*.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.name: p.read_text() for p in (out / "students").glob("*.json")}
    assert 2 <= len(first) < 5, "the batch should have been killed part-way"
    for text in first.values():
        assert json.loads(text)["score"] == points("alibi")
    # the killed batch's grading process notices and leaves (it closes its learner processes)
    deadline = time.monotonic() + 30
    while _batch_workers(memory) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _batch_workers(memory), "a grading worker outlived its killed batch"

    # resume; meanwhile one learner who was graded changed their file: graded again
    changed = sorted(first)[0].replace(".json", ".py")
    shutil.copy(ROOT / "examples" / "rope_attempt.py", submissions / changed)
    # (with two workers, neither confined to a core: --no-pin)
    done = subprocess.run(cmd + ["--summary", "json", "--workers", "2", "--no-pin"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["skipped"] == len(first) - 1 and summary["graded_now"] == 5 - len(first) + 1
    assert summary["worker_cores"] == []
    final = {p.name: p.read_text() for p in (out / "students").glob("*.json")}
    assert len(final) == 5
    assert all(final[name] == text for name, text in first.items() if name != sorted(first)[0])
    assert 0 < json.loads(final[sorted(first)[0]])["score"] < points("rope")
    assert not list((out / "students").glob(".*"))  # no half-written files
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert len(rows) == 5 and sum(float(r["total"]) == points("alibi") for r in rows) == 4


def test_a_learner_who_keeps_the_grader_busy_is_cut_off_and_the_batch_goes_on(tmp_path, monkeypatch):
    from course.platforms import batch

    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "slow.py").write_text("import time\ntime.sleep(120)\n" + (ROOT / "solutions" / "alibi.py").read_text())
    shutil.copy(ROOT / "solutions" / "alibi.py", submissions / "zoe.py")
    generous = Limits(call_seconds=5.0, cell_seconds=300.0, exercise_seconds=6.0, file_seconds=60.0)
    monkeypatch.setattr(batch._Progress, "QUIET_SECONDS", 0.5)  # a log says who is still graded after this long
    log = Console(file=io.StringIO(), width=160)
    summary = run_batch(submissions, tmp_path / "out", workers=2, limits=generous, progress=True, console=log,
                        student_seconds=4, retries=0)
    assert summary["counts"] == {"graded": 1, "error": 1, "grader-failed": 0}
    lines = log.file.getvalue().splitlines()
    # slow is cut off at 4 s; under load zoe may take longer, so slow may be the first one done
    hanging = lines.index(next(line for line in lines if re.match(r"graded [12]/2: slow", line)))
    assert any(line.startswith("still grading: slow (") for line in lines[:hanging]), lines
    results = summary_of(tmp_path / "out")
    slow = json.loads((tmp_path / "out" / "students" / "slow.json").read_text())
    assert slow["status"] == "error" and "did not finish within 4 s" in slow["error"]
    assert results["zoe"][:2] == ("graded", points("alibi"))


def test_nbgrader_submitted_tree(tmp_path):
    course = tmp_path / "course"
    for student, assignment, make in (
        ("frank", "06_rope", lambda p: blank_notebook("rope", p)),
        ("gina", "07_alibi", lambda p: module_notebook((ROOT / "solutions" / "alibi.py").read_text(), p)),
        ("gina", "06_rope", lambda p: module_notebook((ROOT / "solutions" / "rope.py").read_text(), p)),
    ):
        folder = course / "submitted" / student / assignment
        make(folder / f"{assignment}.ipynb")
        (folder / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
    (course / "submitted" / "gina" / "07_alibi" / "helper.py").write_text("def alibi_slopes(n): return None")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")  # an nbgrader course
    # hana's notebook imports its code from a module she submitted beside it (as nbgrader autograde runs it)
    module_notebook("from rope_parts import *\n", course / "submitted" / "hana" / "06_rope" / "06_rope.ipynb")
    (course / "submitted" / "hana" / "06_rope" / "rope_parts.py").write_text((ROOT / "solutions" / "rope.py").read_text())
    students, layout, _ = discover(course)
    assert layout == "nbgrader"
    assert {s.id: s.names() for s in students} == {
        "frank": ["06_rope/06_rope.ipynb"], "gina": ["06_rope/06_rope.ipynb", "07_alibi/07_alibi.ipynb"],
        "hana": ["06_rope/06_rope.ipynb"]}
    assert discover(course / "submitted")[1] == "nbgrader"
    out = tmp_path / "out"
    summary = run_batch(course, out, workers=2, limits=LIMITS, progress=False, formats={"json", "csv"})
    assert summary["layout"] == "nbgrader" and summary["graded_now"] == 3
    results = summary_of(out)
    assert results["frank"][:3] == ("graded", 0.0, points("rope"))
    assert results["gina"][:3] == ("graded", points("rope") + points("alibi"), points("rope") + points("alibi"))
    assert results["hana"][:3] == ("graded", points("rope"), points("rope"))
    assert list(json.loads((out / "students" / "hana.json").read_text())["file_sections"]) == ["06_rope.ipynb"]
    assert (out / "grades.csv").exists() and not (out / "gradescope").exists()
    only_rope = {s.id: s.names() for s in discover(course, assignments=["06_rope"])[0]}
    assert only_rope == {"frank.06_rope": ["06_rope/06_rope.ipynb"], "gina.06_rope": ["06_rope/06_rope.ipynb"],
                         "hana.06_rope": ["06_rope/06_rope.ipynb"]}
    # a changed helper module is a changed submission: graded again (and so with --gradebook, by assignment)
    (course / "submitted" / "hana" / "06_rope" / "rope_parts.py").write_text("")
    assert run_batch(course, out, workers=1, limits=LIMITS, progress=False, dry_run=True)["to_grade"] == ["hana"]
    by_assignment = {s.id: [f.name for f, _ in s.context()] for s in discover(course, by_assignment=True)[0]}
    assert by_assignment["hana.06_rope"] == ["06_rope.ipynb", "rope_parts.py"]

    # the same on a Dask worker: the files travel with the request, the module beside the notebook
    from course.platforms.batch_dask import grade_remote

    files = [("06_rope/06_rope.ipynb", (course / "submitted" / "hana" / "06_rope" / "06_rope.ipynb").read_bytes(), True),
             ("06_rope/rope_parts.py", (ROOT / "solutions" / "rope.py").read_bytes(), False)]
    outcome = grade_remote("hana", files, GradeRequest((), limits=LIMITS).to_json(), None, 600.0, beside=["06_rope"])
    assert outcome["status"] == "graded" and outcome["report"]["score"] == points("rope")


def test_an_nbgrader_assignment_full_of_data_does_not_crowd_out_another_ones_files(tmp_path):
    """A learner's assignment folders share one working copy (at most WORKSPACE_FILES files): they
    take turns, so 600 files in one still leave room for the data file another's notebook reads."""
    from course.grading.staging import WORKSPACE_FILES

    ivy = tmp_path / "course" / "submitted" / "ivy"
    module_notebook("x = 1\n", ivy / "04_learned" / "04_learned.ipynb")
    for i in range(WORKSPACE_FILES + 100):
        (ivy / "04_learned" / f"sample_{i:04}.txt").write_text("0")
    module_notebook("assert float(open('base.txt').read()) == 10000.0\n" + (ROOT / "solutions" / "rope.py").read_text(),
                    ivy / "06_rope" / "06_rope.ipynb")
    (ivy / "06_rope" / "base.txt").write_text("10000.0")
    run_batch(tmp_path / "course", tmp_path / "out", workers=1, limits=LIMITS, progress=False, formats={"json"},
              layout="nbgrader")
    record = json.loads((tmp_path / "out" / "students" / "ivy.json").read_text())
    assert record["score"] == record["max_score"] == points("rope"), record.get("notes")


@CLASS_GROUP
def test_dask_local_cluster_gives_the_same_results(classroom, graded, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "dask"
    done = subprocess.run([sys.executable, "-m", "course.batch", str(classroom), "--out", str(out), "--workers", "2",
                           "--scheduler", "dask", "--no-progress", "--summary", "json", *LIMIT_ARGS],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["graded_now"] == 5
    assert summary_of(out) == summary_of(graded[0])
    workers = {json.loads(p.read_text())["worker"] for p in (out / "students").glob("*.json")} - {"-"}
    assert all(w.startswith(("tcp://", "inproc://")) for w in workers), workers
    local_sheet = (graded[0] / "grades.csv").read_text()
    assert (out / "grades.csv").read_text() == local_sheet


def test_grade_sheet_of_no_exercises_is_just_a_header():
    assert grade_sheet([]).splitlines() == ["student,total,max_score,status,error"]


def test_learner_ids_keep_letters_of_any_script_and_stay_unique(tmp_path):
    for name in ("héctor núñez (v2).py", "x.py", "x.ipynb", "..hidden.py", "a b.py", "a_b.py"):
        (tmp_path / name).write_text("")
    students, layout, _ = discover(tmp_path)
    ids = sorted(s.id for s in students)
    assert layout == "folder" and "héctor_núñez__v2_" in ids and {"x.py", "x.ipynb"} <= set(ids), ids
    assert len(ids) == len(set(ids)) == 5, ids  # ..hidden.py is hidden; "a b" and "a_b" do not collide
    assert all("/" not in i and not i.startswith(".") for i in ids)


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    from course.platforms.batch import main

    for args, why in (([str(tmp_path / "absent")], "not a folder"),
                      ([str(tmp_path), "--format", "pdf"], "unknown format"),
                      ([str(tmp_path), "--only", "rope.nope"], "unknown exercise"),
                      ([str(tmp_path), "--workers", "0"], "at least 1"),
                      ([str(tmp_path), "--assignment", "06_rope"], "needs the nbgrader layout"),
                      ([str(tmp_path), "--gradebook"], "--gradebook needs an nbgrader course"),
                      ([str(tmp_path), "--out", str(tmp_path / "a-file")], "is a file")):
        (tmp_path / "a-file").write_text("")
        with pytest.raises(SystemExit) as exit_:
            main(["--out", str(tmp_path / "o"), *args])
        assert exit_.value.code == 2 and why in capsys.readouterr().err


def test_one_batch_at_a_time_per_output_folder(tmp_path):
    from course.platforms.batch import BatchRunning, _lock

    (tmp_path / "class" / "empty").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    held = _lock(out)
    try:
        with pytest.raises(BatchRunning):
            run_batch(tmp_path / "class", out, progress=False)
    finally:
        held.close()
    assert run_batch(tmp_path / "class", out, progress=False)["counts"]["error"] == 0  # nothing to grade
    assert json.loads((out / "students" / "empty.json").read_text())["status"] == "error"


def test_grade_sheet_marks_exercises_that_do_not_apply():
    """An exercise graded through a convention that cannot express it is n/a, not a 0."""
    record = {"student": "ana", "score": 2.0, "status": "graded", "exercises": [
        {"id": "rope.rope_inv_freq", "score": 2.0, "max_score": 2.0, "feedback": ""},
        {"id": "rope.rope_matrix", "score": 0.0, "max_score": 0.0, "feedback": "Not applicable: ...",
         "applicable": False}]}
    header, row = grade_sheet([record]).splitlines()
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["rope.rope_inv_freq"] == "2" and cells["rope.rope_matrix"] == "n/a" and cells["total"] == "2"
    # the sheet's total counts what its columns can give: not a column that is n/a for everyone
    assert float(cells["max_score"]) == EXERCISES["rope.rope_inv_freq"].points
    graded = dict(record, student="ben", exercises=[dict(e, applicable=True, max_score=2.0) for e in record["exercises"]])
    header, *rows = grade_sheet([record, graded]).splitlines()
    assert {dict(zip(header.split(","), r.split(",")))["max_score"] for r in rows} == \
        {f"{EXERCISES['rope.rope_inv_freq'].points + EXERCISES['rope.rope_matrix'].points:g}"}


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_grades_and_exported_sheets_are_not_committed_by_accident():
    """Student data: a batch's output folder and exported grade sheets are git-ignored wherever they are."""
    for path in ("grades/students/alice.json", "grades/grades.csv", "grades/report.html", "grades.csv",
                 "course_runs/week3/grades/gradescope/bob/results.json", "somewhere/grades.csv"):
        done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT)
        assert done.returncode == 0, f"{path} is not git-ignored"
    for path in ("course/platforms/batch.py", "tests/test_batch.py"):  # the code itself is not
        assert subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT).returncode == 1


def test_grade_sheet_text_is_never_a_spreadsheet_formula(tmp_path):
    """A learner's id or an error naming their file can start with = + - @ (or a tab, a carriage
    return): every spreadsheet would run it as a formula. Such text cells start with ' instead;
    numbers stay numbers."""
    for name in ("@SUM(1+1).py", "+cmd.py", "-2+3.py"):
        (tmp_path / name).write_text("")
    ids = [s.id for s in discover(tmp_path)[0]]
    records = [{"student": i, "score": 1.5, "status": "graded", "exercises": [
        {"id": "rope.rope_inv_freq", "score": 1.5, "max_score": 2.0, "feedback": ""}]} for i in ids]
    records += [{"student": "ana", "score": 0.0, "status": "error", "exercises": [], "error": error}
                for error in ("=HYPERLINK(\"http://x\").ipynb: not a readable notebook", "\t=1+1", "\r=1+1")]
    rows = list(csv.reader(io.StringIO(grade_sheet(records))))
    text_cells = [cell for row in rows[1:] for cell in (row[0], row[-2], row[-1])]
    assert not [cell for cell in text_cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")], text_cells
    assert {row[0] for row in rows[1:4]} == {"'" + i for i in ids}  # the text itself is kept after the '
    assert rows[4][-1] == "'=HYPERLINK(\"http://x\").ipynb: not a readable notebook"
    for row in rows[1:]:  # scores, the total and max_score are plain numbers
        assert all(float(cell) >= 0 for cell in row[1:-2] if cell)


def test_the_layout_comes_from_the_course_folder_never_from_a_learners_files(tmp_path):
    # README's own example: a folder *named* submitted holding a module and a notebook
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    (submitted / "alice.py").write_text("")
    module_notebook("x = 1\n", submitted / "bob.ipynb")
    students, layout, ignored = discover(submitted)
    assert layout == "folder" and [s.id for s in students] == ["alice", "bob"] and not ignored
    # one learner's folder holding a subfolder (hidden or not) with a timestamp.txt changes nothing
    for sub in (".nbgrader", "week1"):
        klass = tmp_path / f"class{sub}"
        (klass / "carl" / sub).mkdir(parents=True)
        (klass / "carl" / sub / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
        (klass / "carl" / "rope.py").write_text("")
        (klass / "dina.py").write_text("")
        students, layout, _ = discover(klass)
        assert layout == "folder" and [s.id for s in students] == ["carl", "dina"], sub
        assert students[0].names() == ["rope.py"]
    # an nbgrader course: its submitted/ beside one of nbgrader's own files; its root or its submitted/
    for marker in ("nbgrader_config.py", "gradebook.db", "source"):
        course = tmp_path / f"course-{marker}"
        module_notebook("x = 1\n", course / "submitted" / "eve" / "06_rope" / "06_rope.ipynb")
        if marker == "source":
            (course / marker).mkdir()
        else:
            (course / marker).write_text("")
        for given in (course, course / "submitted"):
            students, layout, _ = discover(given)
            assert layout == "nbgrader" and {s.id: s.names() for s in students} == {"eve": ["06_rope/06_rope.ipynb"]}
    # a submitted/{student}/{assignment}/ tree without them: only when asked
    bare = tmp_path / "bare"
    module_notebook("x = 1\n", bare / "submitted" / "eve" / "06_rope" / "06_rope.ipynb")
    assert discover(bare)[1] == "folder"
    for given in (bare, bare / "submitted"):
        students, layout, _ = discover(given, layout="nbgrader")
        assert layout == "nbgrader" and [s.id for s in students] == ["eve"]
    students, layout, _ = discover(course, layout="folder")  # asked for: the course's own entries are learners
    assert layout == "folder" and "submitted" in [s.id for s in students]


def test_cli_prints_the_layout_and_fails_when_nobody_could_be_graded(tmp_path, capsys):
    from course.platforms.batch import main

    submitted = tmp_path / "submitted"
    (submitted / "erin").mkdir(parents=True)  # an empty folder: nothing to grade
    assert main([str(submitted), "--out", str(tmp_path / "out"), "--no-progress"]) == 3
    captured = capsys.readouterr()
    assert "layout: folder" in captured.err and "--layout nbgrader" in captured.err, captured.err
    assert "nobody could be graded" in captured.err, captured.err
    assert main([str(submitted), "--out", str(tmp_path / "out"), "--dry-run"]) == 3
    assert "layout: folder" in capsys.readouterr().err
    (submitted / "erin" / "rope.py").write_text("")  # one learner to grade: the dry run succeeds
    assert main([str(submitted), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "erin" in captured.out
    module_notebook("x = 1\n", tmp_path / "course" / "submitted" / "eve" / "06_rope" / "06_rope.ipynb")
    assert main([str(tmp_path / "course"), "--out", str(tmp_path / "out2"), "--dry-run", "--layout", "nbgrader"]) == 0
    assert "layout: nbgrader" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # --assignment: an nbgrader course only
        main([str(submitted), "--out", str(tmp_path / "out"), "--assignment", "06_rope"])
    assert exit_.value.code == 2 and "--layout nbgrader" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_file_names_that_are_not_utf8_are_graded_like_any_other(tmp_path):
    """What unzip leaves from an archive made on Windows: names in a legacy code page. Every
    learner is graded, under an id and in reports that are valid text, distinct from each other."""
    klass = os.fsencode(tmp_path / "class")
    os.makedirs(klass)
    rope = (ROOT / "solutions" / "rope.py").read_bytes()
    for name in (b"caf\xe9.py", b"caf_.py", b"caf\xe8.py"):
        Path(os.fsdecode(klass + b"/" + name)).write_bytes(rope)
    folder = klass + b"/d\xfcrer"
    os.makedirs(folder)
    Path(os.fsdecode(folder + b"/06_r\xf6pe.py")).write_bytes(rope)
    Path(os.fsdecode(folder + b"/n\xf6tes.txt")).write_bytes(b"beside the code")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}  # a strict UTF-8 terminal
    done = subprocess.run([sys.executable, "-m", "course.batch", os.fsdecode(klass), "--out", str(out), "--workers", "1",
                           "--no-progress", *LIMIT_ARGS], cwd=ROOT, capture_output=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    assert done.stdout.decode("utf-8") and done.stderr.decode("utf-8") is not None
    records = [json.loads(p.read_bytes().decode("utf-8")) for p in sorted((out / "students").glob("*.json"))]
    ids = [r["student"] for r in records]
    assert len(ids) == len(set(ids)) == 4 and "caf_" in ids, ids
    for record in records:
        assert record["status"] == "graded" and record["score"] == points("rope"), record
        json.dumps(record, ensure_ascii=False).encode("utf-8")  # every text in it is valid
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_bytes().decode("utf-8"))))
    assert sorted(r["student"] for r in rows) == sorted(ids)
    assert json.loads((out / "report.json").read_bytes().decode("utf-8"))["summary"]["learners"] == 4
    for i in ids:
        assert (out / "gradescope" / i / "results.json").is_file()


def test_grading_another_nbgrader_assignment_into_the_same_folder_keeps_the_first(tmp_path):
    from course.platforms.class_report import write_class_report

    course = tmp_path / "course"
    (course / "submitted").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    for student in ("frank", "gina"):
        for assignment, section in (("06_rope", "rope"), ("07_alibi", "alibi")):
            module_notebook((ROOT / "solutions" / f"{section}.py").read_text(),
                            course / "submitted" / student / assignment / f"{assignment}.ipynb")
    out = tmp_path / "out"
    run = dict(workers=1, limits=LIMITS, progress=False, formats={"json", "csv"})
    assert run_batch(course, out, assignments=["06_rope"], **run)["graded_now"] == 2
    second = run_batch(course, out, assignments=["07_alibi"], **run)
    assert second["graded_now"] == 2 and second["stale"] == []
    expected = {"frank.06_rope": points("rope"), "gina.06_rope": points("rope"),
                "frank.07_alibi": points("alibi"), "gina.07_alibi": points("alibi")}
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {r["student"]: float(r["total"]) for r in rows} == expected
    html, report = write_class_report(out, exclude=second["stale"])
    assert json.loads(report.read_text())["summary"]["learners"] == 4
    # a learner who left the course: their results are kept on disk, named, and out of the sheet
    shutil.rmtree(course / "submitted" / "gina")
    third = run_batch(course, out, assignments=["07_alibi"], **run)
    assert third["graded_now"] == 0 and third["stale"] == ["gina.06_rope", "gina.07_alibi"]
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert sorted(r["student"] for r in rows) == ["frank.06_rope", "frank.07_alibi"]


def test_a_module_that_does_not_parse_is_submitted_and_unreadable_not_missing(tmp_path):
    """Its section is graded 0 with the reason (not left blank as if never submitted), in the
    learner's JSON, grades.csv and the class report; a section another file of the learner does
    define is still graded on that file."""
    from course.platforms.class_report import write_class_report

    klass = tmp_path / "class"
    klass.mkdir()
    broken_alibi = (ROOT / "solutions" / "alibi.py").read_text() + "\ndef oops(:\n    pass\n"
    (klass / "nia").mkdir()
    shutil.copy(ROOT / "solutions" / "rope.py", klass / "nia" / "rope_work.py")
    (klass / "nia" / "07_alibi.py").write_text(broken_alibi)                 # its name and text say alibi
    (klass / "oli.py").write_text("import torch\n\ndef rope_inv_freq(d, base=10000.0:\n    pass\n")  # its text: rope
    (klass / "quin").mkdir()
    (klass / "quin" / "06_rope.py").write_text("def rope_inv_freq(d:\n")     # rope by its name, but...
    shutil.copy(ROOT / "solutions" / "rope.py", klass / "quin" / "work.py")  # ... rope is defined here
    out = tmp_path / "out"
    summary = run_batch(klass, out, workers=1, limits=LIMITS, progress=False, formats={"json", "csv"})
    assert summary["counts"]["grader-failed"] == 0
    record = {p.stem: json.loads(p.read_text()) for p in (out / "students").glob("*.json")}
    nia = {e["id"]: e for e in record["nia"]["exercises"]}
    alibi = [e.id for e in section_exercises("alibi")]
    assert set(alibi) <= set(nia) and record["nia"]["max_score"] == points("rope") + points("alibi")
    assert all(nia[i]["score"] == 0 and "07_alibi.py does not parse" in nia[i]["feedback"] for i in alibi)
    assert record["nia"]["score"] == points("rope")
    assert [(n["file"], n["detail"].split(":")[0]) for n in record["nia"]["notes"]
            if n["kind"] == "unreadable"] == [("07_alibi.py", "SyntaxError")]
    assert record["nia"]["file_sections"]["07_alibi.py"]["sections"] == ["alibi"]
    oli = record["oli"]
    assert oli["max_score"] == points("rope") and oli["score"] == 0
    assert {e["id"] for e in oli["exercises"]} == {e.id for e in section_exercises("rope")}
    assert record["quin"]["score"] == record["quin"]["max_score"] == points("rope")  # correct work keeps its points
    assert [n["file"] for n in record["quin"]["notes"] if n["kind"] == "unreadable"] == ["06_rope.py"]
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert {rows["nia"][i] for i in alibi} == {"0"} and "07_alibi.py does not parse" in rows["nia"]["error"]
    assert "oli.py does not parse" in rows["oli"]["error"]
    report = json.loads(write_class_report(out)[1].read_text())
    problems = {(p["student"], p["kind"]) for p in report["problems"]}
    assert {("nia", "unreadable"), ("oli", "unreadable"), ("quin", "unreadable")} <= problems, report["problems"]
    graded_on = {r["id"]: {s["student"] for s in r["scores"]} for r in report["exercises"]}
    assert "nia" in graded_on["alibi.alibi_slopes"] and "oli" in graded_on["rope.rope_inv_freq"]


@pytest.mark.parametrize("scheduler", ["local", "dask"])
def test_a_class_graded_through_the_instructors_adapter_gets_what_course_grade_gives(tmp_path, scheduler):
    """`course.batch --adapter` (one request type for every way of grading: the same adapter as
    `course.grade --adapter`, also on a Dask worker, which gets the adapter's bytes): each learner
    is graded as `course.grade FILE --adapter` grades them, and changing the adapter regrades."""
    if scheduler == "dask":
        pytest.importorskip("distributed")
    model, adapter = ROOT / "examples" / "model_rope.py", ROOT / "examples" / "model_rope_adapter.py"
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "ada.py").write_text(model.read_text())
    broken = model.read_text().replace("ra, rb = a * cos - b * sin, a * sin + b * cos",
                                        "ra, rb = a * cos + b * sin, -a * sin + b * cos")
    assert broken != model.read_text()
    (klass / "bo.py").write_text(broken)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "course.batch", str(klass), "--out", str(out), "--workers", "1", "--no-progress",
               "--summary", "json", "--scheduler", scheduler, "--adapter", str(adapter), *LIMIT_ARGS]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for student in ("ada", "bo"):
        alone = subprocess.run([sys.executable, "-m", "course.grade", str(klass / f"{student}.py"), "--adapter",
                                str(adapter), "--format", "json", *LIMIT_ARGS], cwd=ROOT, capture_output=True, text=True,
                               timeout=600)
        expected = json.loads(alone.stdout)
        record = json.loads((out / "students" / f"{student}.json").read_text())
        assert [(e["id"], e["score"]) for e in record["exercises"]] == [(e["id"], e["score"]) for e in expected["exercises"]]
    assert json.loads((out / "students" / "ada.json").read_text())["score"] == 8.0
    assert json.loads((out / "students" / "bo.json").read_text())["score"] < 8.0
    changed = tmp_path / "adapter.py"
    changed.write_text(adapter.read_text() + "\n# changed\n")
    command[command.index(str(adapter))] = str(changed)
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and json.loads(again.stdout)["graded_now"] == 2, again.stderr[-3000:]
