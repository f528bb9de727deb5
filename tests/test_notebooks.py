"""Every notebook runs top to bottom: with solutions cleanly, and as released with the course's
reference in place of every exercise; an ungraded notebook as it is (the lab: tests/test_lab.py,
beside notebooks 06-08). (As released and unfinished, only failing with NotImplementedError:
tests/test_browser.py, in JupyterLab, which CI always runs.)"""
import html
import time

import nbformat
import pytest
from nbclient import NotebookClient

from course.exercises import NOTEBOOKS
from course.learner.selfcheck import BORROWED
from course.learner.workspace import UNGRADED_NOTEBOOKS
from tests.conftest import ROOT, source_notebook, without_hidden_tests

LAB = "09_extrapolation_lab"  # run by tests/test_lab.py, beside the notebooks whose functions it reads


def run(nb, cwd):
    client = NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def errors(nb):
    return [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


def images(nb):
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def text(nb):
    """Printed text and the plain-text form of displayed objects (the self-check's table)."""
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") + "\n"
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.parametrize("section", list(NOTEBOOKS))
def test_solution_notebook_runs_clean(section, tmp_path):
    nb = without_hidden_tests(source_notebook(section))
    seconds = run(nb, tmp_path)
    print(f"{NOTEBOOKS[section]} with solutions: {seconds:.1f} s")
    assert errors(nb) == []
    assert images(nb) >= 1, "no figure rendered"
    lesson = nbformat.from_dict({**nb, "cells": [c for c in nb.cells if "export" not in c.metadata.get("tags", [])]})
    summary = text(lesson).strip().splitlines()[-1]  # the self-check's, before the written answers' export cell
    passed, _, total = summary.split()[:3]
    assert summary.endswith("checks pass.") and passed == total, summary
    assert list(tmp_path.iterdir()) == [], "the notebook left files behind"


@pytest.mark.parametrize("section", list(NOTEBOOKS))
def test_a_learner_who_uses_the_reference_for_everything_is_never_stuck(section, released, tmp_path):
    """Released notebook, nothing written, `use_reference` after every solution cell: every cell
    runs, and only the grade cells fail (the self-check knows the course's version is not yours)."""
    nb = nbformat.read(released[section], as_version=4)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        names = [t.split(":", 1)[1] for t in cell.metadata.get("tags", []) if t.startswith("solution:")]
        if names:
            cells.append(nbformat.v4.new_code_cell("from course.selfcheck import use_reference\n" + "\n".join(
                f'use_reference("{section}.{name}")' for name in names)))
    nb.cells = cells
    run(nb, tmp_path)
    grade_cells = {i for i, c in enumerate(nb.cells) if any(t.startswith("grade:") for t in c.metadata.get("tags", []))}
    failing = {i for i, _, _ in errors(nb)}
    assert failing - grade_cells == set(), [e for e in errors(nb) if e[0] not in grade_cells][:3]
    assert {e[1] for e in errors(nb)} == {"AssertionError"} and failing == grade_cells
    pages = [o.data.get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if o.output_type == "display_data"]
    assert any(html.escape(BORROWED) in page for page in pages)


@pytest.mark.parametrize("name", [n for n in UNGRADED_NOTEBOOKS if n != LAB])
def test_ungraded_notebook_runs_clean(name, tmp_path):
    """No exercise, so nothing of the learner's to wait for: it runs from the source, draws its
    figures and writes nothing beside itself."""
    nb = nbformat.read(ROOT / "source_notebooks" / name / f"{name}.ipynb", as_version=4)
    seconds = run(nb, tmp_path)
    print(f"{name}: {seconds:.1f} s")
    assert errors(nb) == []
    assert images(nb) >= 1, "no figure rendered"
    assert list(tmp_path.iterdir()) == [], "the notebook left files behind"
