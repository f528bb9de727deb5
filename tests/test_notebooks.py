"""Every graded notebook runs top to bottom as released with the course's reference in place of
every exercise. (With solutions, as released and unfinished, and the ungraded notebooks:
tests/test_browser.py, in JupyterLab, which CI always runs; the lab beside notebooks 06-08 also
in tests/test_lab.py.)"""
import html

import nbformat
import pytest
from nbclient import NotebookClient

from course.exercises import NOTEBOOKS
from course.learner.reference import NOT_LENT
from course.learner.selfcheck import BORROWED
from tests.conftest import with_references


def run(nb, cwd):
    NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()


def errors(nb):
    return [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("section", [s for s in NOTEBOOKS if s not in NOT_LENT])
def test_a_learner_who_uses_the_reference_for_everything_is_never_stuck(section, released, tmp_path):
    """Released notebook, nothing written, `use_reference` after every solution cell: every cell
    runs, and only the grade cells fail (the self-check knows the course's version is not yours)."""
    nb = with_references(nbformat.read(released[section], as_version=4), section)
    run(nb, tmp_path)
    grade_cells = {i for i, c in enumerate(nb.cells) if any(t.startswith("grade:") for t in c.metadata.get("tags", []))}
    failing = {i for i, _, _ in errors(nb)}
    assert failing - grade_cells == set(), [e for e in errors(nb) if e[0] not in grade_cells][:3]
    assert {e[1] for e in errors(nb)} == {"AssertionError"} and failing == grade_cells
    pages = [o.data.get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if o.output_type == "display_data"]
    assert any(html.escape(BORROWED) in page for page in pages)
    assert list(tmp_path.iterdir()) == [], "the notebook left files behind"

