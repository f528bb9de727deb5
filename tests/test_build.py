"""The source notebooks are in sync with solutions/ and the registry; bad tags are refused."""
import json

import nbformat
import pytest

from course.authoring import build
from course.exercises import NOTEBOOKS, ROBUSTNESS_SHARE, section_exercises


def test_notebooks_do_not_drift():
    assert build.build(check=True) == [], "run `python -m course.build` and commit the notebooks"


def test_every_section_has_a_notebook_and_solutions():
    for section in NOTEBOOKS:
        assert build.notebook_path(section).exists(), section
        assert (build.SOLUTIONS_DIR / f"{section}.py").exists(), section


def _headings(section: str) -> set[str]:
    """The markdown headings of a section's notebook, without their leading #s."""
    notebook = nbformat.read(build.notebook_path(section), as_version=4)
    return {line.lstrip("#").strip() for cell in notebook.cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith("#")}


def test_every_pointer_to_reread_names_a_heading_of_its_notebook():
    """Feedback sends a learner to `Exercise.where`: it must be a heading they can find."""
    for section in NOTEBOOKS:
        headings = _headings(section)
        missing = [e.id for e in section_exercises(section) if e.where not in headings]
        assert not missing, f"{section}: no such heading for {missing}"


def test_every_mistake_reread_names_a_heading_of_its_notebook():
    """A recognised mistake may send a learner to another section (MISTAKES' `reread`): the same
    "notebook NN_section, section <heading>" as an exercise's pointer, with a heading they can find."""
    from course.grading.mistakes import MISTAKES

    sections = {notebook: section for section, notebook in NOTEBOOKS.items()}
    wrong = []
    for key, known in MISTAKES.items():
        if known.reread:
            notebook, _, heading = known.reread.removeprefix("notebook ").partition(", section ")
            if not known.reread.startswith("notebook ") or notebook not in sections \
                    or heading not in _headings(sections[notebook]):
                wrong.append(f"{key}: {known.reread}")
    assert not wrong, f"no such notebook heading: {wrong}"


def test_ungraded_notebooks_have_no_exercise_cells():
    """The build fills the exercise cells of graded sections' notebooks only: an ungraded notebook
    may ask written questions (manual cells) but has no solution or grade cell."""
    from course.learner.workspace import UNGRADED_NOTEBOOKS

    for name in UNGRADED_NOTEBOOKS:
        cells = nbformat.read(build.SOURCE_DIR / name / f"{name}.ipynb", as_version=4).cells
        tags = [tag for cell in cells for tag in cell.metadata.get("tags", [])
                if tag.startswith(("solution:", "grade:"))]
        assert tags == [], f"{name}: {tags}"


def test_solution_segments_keep_the_closing_marker():
    defs, _ = build.solution_segments("rope")
    for name, segment in defs.items():
        assert segment.count("### BEGIN SOLUTION") == segment.count("### END SOLUTION") >= 1, name


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_unknown_solution_name_is_refused():
    cell = nbformat.v4.new_code_cell("", metadata={"tags": ["solution:no_such_function"]})
    with pytest.raises(build.BuildError, match="no_such_function"):
        build.build_notebook("rope", _nb(cell))


SETUP = "import math\nimport torch\nfrom torch import nn"


def test_missing_solution_cell_is_refused():
    with pytest.raises(build.BuildError, match="no solution: cell"):
        build.build_notebook("rope", _nb(nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["setup"]})))


def test_a_grade_cell_is_added_after_each_solution_cell_that_has_none():
    names = [e.name for e in section_exercises("rope")]
    solutions = [nbformat.v4.new_code_cell("", metadata={"tags": [f"solution:{n}"]}) for n in names]
    own = nbformat.v4.new_code_cell("", metadata={"tags": [f"grade:{names[0]}"]})
    built = build.build_notebook("rope", _nb(nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["setup"]}),
                                             solutions[0], own, *solutions[1:]))
    tags = [c.metadata["tags"][0] for c in built.cells[1:]]
    expected = [f"solution:{names[0]}", f"grade:{names[0]}"]
    for name in names[1:]:
        expected += [f"solution:{name}", f"grade:{name}"]
    assert tags == expected
    assert f'check("rope.{names[1]}")' in built.cells[4].source


def test_setup_cell_must_import_what_solutions_use():
    with pytest.raises(build.BuildError, match="from torch import nn"):
        build.build_notebook("rope", _nb(nbformat.v4.new_code_cell("import torch", metadata={"tags": ["setup"]})))


def test_the_robustness_share_the_learners_read_is_the_graders():
    """01's introduction and the README state the share of the points robustness checks carry."""
    share, rest = f"{ROBUSTNESS_SHARE:.0%}".replace("%", " %"), f"{1 - ROBUSTNESS_SHARE:.0%}".replace("%", " %")
    from tests.conftest import ROOT

    intro = nbformat.read(build.notebook_path("intuition"), as_version=4).cells[0].source
    for text in (intro, (ROOT / "README.md").read_text()):
        words = " ".join(text.split())
        assert f"worth {share} of its points" in words and f"other {rest}" in words


def test_grade_cell_gets_points_from_the_registry():
    nb = nbformat.read(build.notebook_path("rope"), as_version=4)
    cell = next(c for c in nb.cells if "grade:apply_rope" in c.metadata.get("tags", []))
    assert cell.metadata.nbgrader["points"] == 4
    assert cell.metadata.nbgrader["locked"] and cell.metadata.nbgrader["grade"]
    assert 'check("rope.apply_rope")' in cell.source and "BEGIN HIDDEN TESTS" in cell.source


def test_every_exercise_is_wired_through_every_place_it_needs():
    """An exercise added to the registry and forgotten elsewhere fails here, naming the place:
    its notebook's solution cell, a visible check, hidden tests, a bug of the bank, a correct
    alternative (DEVELOPING, "Adding one graded function")."""
    import importlib.util

    from course.exercises import EXERCISES
    from course.learner.visible_checks import checks_for
    from tests.conftest import ROOT, alternative_exercises, alternatives
    from tests.test_bank import _bugs

    marked = set()
    for path in (ROOT / "grader_tests").glob("test_*.py"):
        spec = importlib.util.spec_from_file_location(f"suite_{path.stem}", path)
        suite = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(suite)
        marked |= {mark.args[0] for test in vars(suite).values() for mark in getattr(test, "pytestmark", [])
                   if mark.name == "exercise"}
    buggy = {param.values[1].exercise for param in _bugs()}
    accepted = {e for path in alternatives() for e in alternative_exercises(path)}
    missing = []
    for exercise in EXERCISES.values():
        cells = {tag for cell in nbformat.read(build.notebook_path(exercise.section), as_version=4).cells
                 for tag in cell.metadata.get("tags", [])}
        for place, present in ((f"a `solution:{exercise.name}` cell", f"solution:{exercise.name}" in cells),
                               ("a visible check", bool(checks_for(exercise.id))),
                               ("hidden tests", exercise.id in marked),
                               ("a bug in tests/bank", exercise.id in buggy),
                               ("a correct alternative in tests/alternatives", exercise.id in accepted)):
            if not present:
                missing.append(f"{exercise.id}: {place}")
    assert not missing, missing


def test_a_written_question_gets_its_prompt_points_and_an_export_cell_at_the_end():
    names = [e.name for e in section_exercises("rope")]
    cells = [nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["setup"]}),
             *[nbformat.v4.new_code_cell("", metadata={"tags": [f"solution:{n}"]}) for n in names],
             nbformat.v4.new_markdown_cell("Some prose."),
             nbformat.v4.new_markdown_cell("**Question.** Why?"),
             nbformat.v4.new_code_cell("x = 1"),
             nbformat.v4.new_markdown_cell("Model answer.", metadata={"tags": ["manual:why:2"]}),
             nbformat.v4.new_markdown_cell("After.")]
    built = build.build_notebook("rope", _nb(*cells))
    assert built.cells[-1].metadata["tags"][0] == build.EXPORT_TAG and built.cells[-1].source == build.EXPORT_SOURCE
    assert "nbgrader" not in built.cells[-1].metadata  # not graded
    assert json.loads(build.written_questions([("06_rope", built)])) == [
        {"id": "why", "notebook": "06_rope", "points": 2.0, "prompt": "**Question.** Why?"}]
    again = build.build_notebook("rope", built)
    assert [c.source for c in again.cells] == [c.source for c in built.cells]  # one export cell, kept in place
    without = build.build_notebook("rope", _nb(*cells[:len(names) + 1]))
    assert not any(build.EXPORT_TAG in c.metadata.get("tags", []) for c in without.cells)


def test_a_written_question_without_a_prompt_is_refused():
    answer = nbformat.v4.new_markdown_cell("Model answer.", metadata={"tags": ["manual:why:2"]})
    with pytest.raises(build.BuildError, match="no markdown cell asks written question why"):
        build.written_questions([("06_rope", _nb(nbformat.v4.new_code_cell("x = 1"), answer))])


def test_the_readmes_counts_are_the_registrys():
    """The README's numbers of graded exercises and points, as the registry and the written
    questions make them (they drift whenever an exercise is added)."""
    import re
    from pathlib import Path

    from course.exercises import EXERCISES
    from course.lesson import WRITTEN_QUESTIONS_FILE

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    written = json.loads(WRITTEN_QUESTIONS_FILE.read_text())
    questions = written if isinstance(written, list) else list(written.get("questions", written.values()))
    code, manual = sum(e.points for e in EXERCISES.values()), sum(q["points"] for q in questions)
    said = re.search(r"The (\d+) written questions \((\d+) of the (\d+) points; the code is the other (\d+)\)", readme)
    assert said, "the README no longer says how the points split between written answers and code"
    assert [float(n) for n in said.groups()] == [len(questions), manual, code + manual, code]
    exercises = re.search(r"(\d+) graded exercises \((\d+) functions and the bug zoo's diagnosis\)", readme)
    assert exercises and [int(n) for n in exercises.groups()] == [len(EXERCISES), len(EXERCISES) - 1]
