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
from dataclasses import asdict
from pathlib import Path

import nbformat
import pytest
from rich.console import Console

from course.cores import pin_one_core_each
from course.platforms.batch import discover, grade_sheet, run_batch
from course.platforms.batch_worker import GraderWorker
from course.exercises import EXERCISES, section_exercises
from course.sandbox.limits import Limits
from tests.conftest import ROOT, source_notebook

# Small limits keep broken submissions cheap; correct code answers in milliseconds.
LIMITS = Limits(call_seconds=3.0, cell_seconds=5.0, exercise_seconds=3.0, submission_seconds=60.0)
LIMIT_ARGS = ["--call-seconds", "3", "--cell-seconds", "5", "--exercise-seconds", "3", "--submission-seconds", "60"]
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
    assert {f["file"]: f["sections"] for f in bob["file_sections"]} == {"06_rope.ipynb": ["rope"],
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
        report = worker.grade("ana", [path])["report"]
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


def test_a_learner_who_keeps_the_grader_busy_is_cut_off_and_the_batch_goes_on(tmp_path):
    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "slow.py").write_text("import time\ntime.sleep(120)\n" + (ROOT / "solutions" / "alibi.py").read_text())
    shutil.copy(ROOT / "solutions" / "alibi.py", submissions / "zoe.py")
    generous = Limits(call_seconds=5.0, cell_seconds=300.0, exercise_seconds=6.0, submission_seconds=60.0)
    summary = run_batch(submissions, tmp_path / "out", workers=2, limits=generous, progress=False,
                        student_seconds=4, retries=0)
    assert summary["counts"] == {"graded": 1, "error": 1, "grader-failed": 0}
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
    assert "file_sections" not in json.loads((out / "students" / "hana.json").read_text())  # one file graded
    assert (out / "grades.csv").exists() and not (out / "gradescope").exists()
    only_rope = {s.id: s.names() for s in discover(course, assignments=["06_rope"])[0]}
    assert only_rope == {"frank": ["06_rope/06_rope.ipynb"], "gina": ["06_rope/06_rope.ipynb"],
                         "hana": ["06_rope/06_rope.ipynb"]}
    # a changed helper module is a changed submission: graded again (and so with --gradebook, by assignment)
    (course / "submitted" / "hana" / "06_rope" / "rope_parts.py").write_text("")
    assert run_batch(course, out, workers=1, limits=LIMITS, progress=False, dry_run=True)["to_grade"] == ["hana"]
    by_assignment = {s.id: [f.name for f, _ in s.context()] for s in discover(course, by_assignment=True)[0]}
    assert by_assignment["hana.06_rope"] == ["06_rope.ipynb", "rope_parts.py"]

    # the same on a Dask worker: the files travel with the request, the module beside the notebook
    from course.platforms.batch_dask import grade_remote

    files = [("06_rope/06_rope.ipynb", (course / "submitted" / "hana" / "06_rope" / "06_rope.ipynb").read_bytes(), True),
             ("06_rope/rope_parts.py", (ROOT / "solutions" / "rope.py").read_bytes(), False)]
    outcome = grade_remote("hana", files, asdict(LIMITS), None, 600.0, beside=["06_rope"])
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
    run_batch(tmp_path / "course", tmp_path / "out", workers=1, limits=LIMITS, progress=False, formats={"json"})
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
                      ([str(tmp_path), "--assignment", "06_rope"], "needs an nbgrader course"),
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
