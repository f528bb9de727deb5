"""A learner who rewrites their folder while it is graded.

Files and folders are listed, then opened: a learner who swaps one for a symbolic link in
between (or gives one) must get neither a solution graded as theirs nor the hidden suite copied
beside their code, where it could raise it into the report. The grader snapshots the folder once
(course.grading.staging) and reads only the snapshot.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from course.grading import grader, staging
from course.grading.grader import grade_files
from course.sandbox.learner_process import Limits
from course.grading.report import rendered_notes

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "rope.py"
HIDDEN = ROOT / "grader_tests" / "test_rope.py"
FAST = Limits(call_seconds=2.0, cell_seconds=20.0, exercise_seconds=5.0, file_seconds=120.0)
STUB = "import torch\n\n\ndef rope_inv_freq(d, base=10000.0):\n    return torch.zeros(d // 2)\n"
# (a star import: its names cannot be told from its text, so it runs although it defines no graded name)
LEAK = "from math import *\nraise ValueError('read: ' + open('data/test_rope.py').read()[:1500])\n"
OWN = "NOTES = 'my own notes'\n"  # a module of the learner's folder: graded too (it defines nothing graded)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs O_NOFOLLOW and dir_fd")


def learner(tmp_path: Path) -> Path:
    """class/bob/: rope.py (wrong: no exercise earns a point), leak.py (raises what data/test_rope.py
    holds, so that it reaches the report) and data/test_rope.py (the learner's own notes)."""
    bob = tmp_path / "class" / "bob"
    (bob / "data").mkdir(parents=True)
    (bob / "rope.py").write_text(STUB)
    (bob / "leak.py").write_text(LEAK)
    (bob / "data" / "test_rope.py").write_text(OWN)
    return bob


def swap(path: Path, target: Path) -> None:
    """`path` becomes a symbolic link to `target` (the original kept under a hidden name)."""
    os.rename(path, path.with_name(f".{path.name}.orig"))
    os.symlink(target, path)


def hidden_lines() -> list[str]:
    """Lines of the hidden suite long enough to be its own (within the 1500 characters leak.py raises)."""
    return [line for line in HIDDEN.read_text()[:1500].splitlines() if len(line.strip()) > 25]


def assert_nothing_leaked(report: dict) -> None:
    text = json.dumps(report)
    assert hidden_lines() and not [line for line in hidden_lines() if json.dumps(line)[1:-1] in text], text[:3000]
    assert all(e["score"] < e["max_score"] for e in report["exercises"]), report  # the solution earns them all


def test_files_swapped_for_links_before_they_are_read(tmp_path, monkeypatch):
    """Listed as files, swapped for links to the solution and the hidden suite before they are read."""
    bob = learner(tmp_path)
    reading = grader.read_submission

    def swapped_first(path, *args, **kwargs):
        if not os.path.islink(bob / "rope.py"):
            swap(bob / "rope.py", SOLUTION)
            swap(bob / "data" / "test_rope.py", HIDDEN)
        return reading(path, *args, **kwargs)

    monkeypatch.setattr(grader, "read_submission", swapped_first)
    report = grade_files([bob], limits=FAST)
    assert os.path.islink(bob / "rope.py")  # the swap did happen while grading
    assert_nothing_leaked(report)
    assert "rope.rope_inv_freq" in {e["id"] for e in report["exercises"]}  # the stub was graded, as it was listed
    assert any("my own notes" in note for note in rendered_notes(report)), rendered_notes(report)  # leak.py read them


@pytest.mark.parametrize("what", ["files", "folders"])
def test_swapped_between_listing_and_opening(what, tmp_path, monkeypatch):
    """The snapshot's own window: a file, or the folder holding it, swapped right after it is listed."""
    bob = learner(tmp_path)
    (bob / "sub").mkdir()
    (bob / "rope.py").rename(bob / "sub" / "rope.py")
    listing = staging.visible_files

    def swapped_after(fd):
        found = listing(fd)
        if what == "files":
            swap(bob / "sub" / "rope.py", SOLUTION)
            swap(bob / "data" / "test_rope.py", HIDDEN)
        else:  # solutions/ holds a rope.py, grader_tests/ a test_rope.py
            swap(bob / "sub", SOLUTION.parent)
            swap(bob / "data", HIDDEN.parent)
        return found

    monkeypatch.setattr(staging, "visible_files", swapped_after)
    report = grade_files([bob], limits=FAST)
    assert_nothing_leaked(report)
    notes = "\n".join(rendered_notes(report))
    assert "rope.py is a symbolic link (not followed)" in notes and "FileNotFoundError" in notes, notes


@pytest.mark.parametrize("given", ["file", "folder"])
def test_a_link_given_directly_is_not_followed(given, tmp_path):
    """class/carol.py -> the solution, class/dave/ -> solutions/: nothing of either is graded."""
    (tmp_path / "class").mkdir()
    link = tmp_path / "class" / ("carol.py" if given == "file" else "dave")
    link.symlink_to(SOLUTION if given == "file" else SOLUTION.parent)
    report = grade_files([link], limits=FAST)
    assert report["exercises"] == [] and report["score"] == 0.0, report
    assert report["error"] == f"{link} is a symbolic link (not followed)"


def test_a_folder_flipping_between_its_own_and_links_never_snapshots_a_target(tmp_path):
    """A thread flips rope.py and data/ between the learner's own and links to the solution and the
    hidden suites, as fast as it can, while the folder is snapshotted again and again: every file
    copied is the learner's own."""
    bob = learner(tmp_path)
    own_rope, own_data, tmp = bob / ".own-rope.py", bob / ".own-data", bob / ".tmp"
    os.link(bob / "rope.py", own_rope)
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            os.symlink(SOLUTION, tmp)
            os.replace(tmp, bob / "rope.py")
            os.link(own_rope, tmp)
            os.replace(tmp, bob / "rope.py")
            os.rename(bob / "data", own_data)
            os.symlink(HIDDEN.parent, bob / "data")
            os.unlink(bob / "data")
            os.rename(own_data, bob / "data")

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    seen = []
    try:
        for _ in range(300):
            with staging.snapshot([bob], file_mb=64) as staged:
                seen += [path.read_text() for path in staged.graded + [f for _, f in staged.copies]]
    finally:
        stop.set()
        thread.join()
    assert set(seen) <= {STUB, LEAK, OWN}, [text[:100] for text in set(seen) - {STUB, LEAK, OWN}]
    assert STUB in seen and OWN in seen  # the learner's own files were snapshotted too


def test_what_is_not_there_is_said_so(tmp_path):
    """A missing file, one in a missing folder, an empty folder: each named in the report, never a crash."""
    (tmp_path / "empty").mkdir()
    for given, says in ((tmp_path / "gone.py", "is not a file"), (tmp_path / "nowhere" / "gone.py", "is not a file"),
                        (tmp_path / "empty", "holds no notebook")):
        with staging.snapshot([given], file_mb=64) as staged:
            assert staged.graded == [] and [path for path, _ in staged.refused] == [given], staged
            assert says in staged.refused[0][1]
