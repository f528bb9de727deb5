"""Code nested too deeply for Python: `1+1+...` a million times, `-(-(...))`,
100 000 parentheses. Python's parser and compiler raise RecursionError or MemoryError on it, in
the grader's analysis of a file as in the learner's process. The grader must give a valid report
(exit status 0) in which the failure is a note about that file, and grade everything else."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

from course.exercises import section_exercises
from course.grading import grader
from course.grading.grader import grade_file, grade_files
from course.sandbox import cells
from course.grading.report import rendered_notes
from tests.conftest import ROOT
from tests.test_isolation import FAST, assert_valid

ATTACKS = ROOT / "tests" / "attacks"
SOLUTION = (ROOT / "solutions" / "rope.py").read_text()
ROPE_POINTS = sum(e.points for e in section_exercises("rope"))
TOO_DEEP = re.compile(r"RecursionError|MemoryError|SyntaxError: too many nested parentheses")


def deep_sources() -> dict[str, str]:
    """The issue's own examples, and the committed attack."""
    return {
        "sum_of_a_million": "x = " + "+".join(["1"] * 1_000_000) + "\n",
        "parentheses": "x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n",
        "attack": (ATTACKS / "deep_expressions.py").read_text(),
    }


def cli(*paths, args=()) -> dict:
    """`python -m course.grade ... --format json`: exit status 0 and one JSON object on stdout."""
    done = subprocess.run([sys.executable, "-m", "course.grade", *map(str, paths), "--format", "json",
                           "--call-seconds", "5", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", list(deep_sources()))
def test_the_analysis_of_deep_code_never_raises(name):
    """What the grader reads from a cell's text: nothing, or 'cannot be told' (None), never an exception."""
    code = deep_sources()[name]
    assert cells.top_level_names(code) == frozenset()
    assert cells.definitions_only(code) == ("", [])
    assert cells.names_used(code) is None and cells.names_bound(code) is None
    assert cells.skippable_demonstrations([(code, True), ("y = 1", False)], set()) == set()  # it runs
    assert cells.to_python(code) == code


@pytest.mark.parametrize("name", list(deep_sources()))
def test_a_deep_module_gets_a_report_with_a_note(name, tmp_path):
    path = tmp_path / "deep.py"
    path.write_text(SOLUTION + "\n" + deep_sources()[name])
    report = cli(path)
    # Submitted but unreadable: its section scores 0 saying why, never left out.
    assert report["score"] == 0 and report["max_score"] == ROPE_POINTS, report
    assert all("does not parse" in e["feedback"] for e in report["exercises"]), report
    assert any(note.startswith("your module: ") and TOO_DEEP.search(note) for note in rendered_notes(report)), report


def test_a_deep_file_beside_a_good_one_costs_nothing_but_a_note(tmp_path):
    good, deep = tmp_path / "rope.py", tmp_path / "deep.py"
    good.write_text(SOLUTION)
    deep.write_text(deep_sources()["sum_of_a_million"])
    report = cli(good, deep)
    assert report["score"] == report["max_score"] == ROPE_POINTS, report
    assert any(note.startswith("deep.py: your module: ") and TOO_DEEP.search(note) for note in rendered_notes(report))


def test_a_deep_cell_costs_only_its_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in
                                         [SOLUTION, *deep_sources().values(), "x = 1"]])
    path = tmp_path / "06_rope.ipynb"
    nbformat.write(nb, path)
    report = cli(path)
    by_id = assert_valid(report, "rope")
    assert all(e["score"] == e["max_score"] for e in by_id.values()), by_id
    for cell in (2, 3, 4):
        assert any(note.startswith(f"cell {cell}: ") and TOO_DEEP.search(note) for note in rendered_notes(report)), report
    assert not any(note.startswith("cell 5:") for note in rendered_notes(report))


def test_a_crashed_modules_deep_definitions_are_replayed(tmp_path):
    """The module ends its process: its definitions alone are replayed, a deep one included."""
    path = tmp_path / "crashes.py"
    path.write_text(SOLUTION + "\n" + (ATTACKS / "deep_definitions.py").read_text())
    report = grade_file(path, limits=FAST)
    by_id = assert_valid(report, "rope")
    assert all(e["score"] == e["max_score"] for e in by_id.values()), by_id
    assert any("kept its definitions" in note and "deep_total" in note for note in rendered_notes(report)), report


def test_kept_definitions_are_the_learners_own_text_on_their_own_lines():
    code = ("import os, sys; x = 1\n@dec\n@other(1,\n  2)\ndef f(a):\n    return a  # a comment\n\n"
            "y = f(2); z = (1,\n -2)\nclass C: pass\nfor i in range(3): pass\n")
    kept, names = cells.definitions_only(code)
    assert names == ["os", "sys", "x", "f", "z", "C"]
    assert kept.splitlines() == ["import os, sys; x = 1", "@dec", "@other(1,", "  2)", "def f(a):", "    return a",
                                 "", "z = (1,", " -2)", "class C: pass"]


def test_any_failure_to_analyse_a_file_is_a_note_about_it(tmp_path, monkeypatch):
    """Whatever the static analysis trips on (here a stand-in that raises) costs a note, not the report."""
    good, odd = tmp_path / "rope.py", tmp_path / "odd.py"
    good.write_text(SOLUTION)
    odd.write_text("from math import *\nx = 1\n")  # (its names cannot be told from its text: it runs)
    real = grader.statically_defined

    def trips(submission, names):
        if submission.path.name == "odd.py":
            raise RuntimeError("tripped")
        return real(submission, names)

    monkeypatch.setattr(grader, "statically_defined", trips)
    report = grade_files([good, odd], limits=FAST)
    assert report["score"] == report["max_score"] == ROPE_POINTS, report
    assert any(n.startswith("odd.py: the grader could not read") and "RuntimeError: tripped" in n
               for n in rendered_notes(report)), report
