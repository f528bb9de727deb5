"""Bring the nbgrader source notebooks in line with solutions/ and the exercise registry.

Authors tag cells; this fills them in, so each solution exists in exactly one place
(solutions/<section>.py) and the points in one place (course/exercises.py):

- code cell tagged ``solution:NAME`` (one tag per name, in order): source becomes those
  definitions from solutions/<section>.py; nbgrader autograded-answer metadata.
- code cell tagged ``grade:NAME``: the visible check plus the hidden grading call;
  nbgrader autograder-test metadata with the registry's points. Where an author wrote none,
  one is added right after the solution cell of NAME.
- markdown cell tagged ``manual:ID:POINTS``: a written answer graded by hand; its
  source (the model answer) is replaced by a prompt in the release.
- after each ``manual:ID:POINTS`` cell, a demonstration cell tagged ``reveal:ID`` that shows a self-study
  learner the model answer once theirs is written (course.learner.reveal); the model answers of
  every source notebook go to ``course/model_answers.json``; each question's prompt (the nearest
  markdown cell before its answer cell) and points to ``course/written_questions.json``.
- at the end of every notebook with written questions (the lab's too), a cell tagged ``export``
  that writes the learner's answers.pdf for Gradescope (course.export); a demonstration.
- code cell tagged ``setup``: read-only; must contain every import the solutions use.
- every other code cell (timings, figures, experiments) is tagged ``demo`` with its source's
  fingerprint in ``metadata.course_demo``: the grader may leave it out, unedited, when nothing
  grading runs uses what it defines (course.grading.submission); ``course/demonstrations.json``
  lists them all (the nbgrader bridge recognises them in a kernel's history by it).

``python -m course.build`` rewrites the notebooks; ``--check`` only reports drift.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import nbformat

from course.exercises import EXERCISES, NOTEBOOKS, section_exercises
from course.lesson import (DEMO_KEY, DEMO_TAG, DEMONSTRATIONS_FILE, MODEL_ANSWERS_FILE, WRITTEN_QUESTIONS_FILE,
                           demo_fingerprint)
from course.locations import REPO

SOURCE_DIR = REPO / "source_notebooks"
SOLUTIONS_DIR = REPO / "solutions"
EXPORT_TAG = "export"
EXPORT_SOURCE = ("# Written answers for Gradescope: save every notebook (Ctrl+S), then run this cell to write answers.pdf\n"
                 "from course.selfcheck import export_answers; export_answers()")


class BuildError(Exception):
    pass


def notebook_path(section: str, root: Path = REPO) -> Path:
    name = NOTEBOOKS[section]
    return root / "source_notebooks" / name / f"{name}.ipynb"


def solution_segments(section: str) -> tuple[dict[str, str], list[str]]:
    """Top-level definitions of solutions/<section>.py by name, and its import lines."""
    path = SOLUTIONS_DIR / f"{section}.py"
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    defs, imports = {}, []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        end = node.end_lineno
        while end < len(lines) and lines[end].startswith((" ", "\t")) and lines[end].strip().startswith("#"):
            end += 1  # trailing indented comments belong to the body (### END SOLUTION)
        segment = "\n".join(lines[start - 1 : end])
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = segment
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(segment)
    return defs, imports


def grade_cell_source(exercise_id: str) -> str:
    ex = EXERCISES[exercise_id]
    return (
        f"# Autograded: {ex.id} ({ex.points:g} point{'s' if ex.points != 1 else ''}). Run this cell to check your work;\n"
        f"# more tests run when your notebook is graded.\n"
        f'check("{ex.id}")\n'
        "### BEGIN HIDDEN TESTS\n"
        "from course.nbgrader_bridge import grade_exercise\n"
        f'grade_exercise("{ex.id}")\n'
        "### END HIDDEN TESTS"
    )


def reveal_cell_source(answer_id: str) -> str:
    return ("# Written answers are graded by hand. Once yours is written and saved, compare it with the\n"
            "# model answer and mark it yourself:\n"
            "from course.selfcheck import reveal\n"
            f'reveal("{answer_id}")')


def _tagged(cell, prefix: str) -> list[str]:
    return [t[len(prefix):] for t in cell.metadata.get("tags", []) if t.startswith(prefix)]


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool, points=None) -> dict:
    meta = {"schema_version": 3, "grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id}
    if points is not None:
        meta["points"] = points
    return meta


def _add_grade_cells(nb, graded: set[str]) -> None:
    """A graded name without a grade cell gets one, right after its solution cell."""
    present = {name for cell in nb.cells for name in _tagged(cell, "grade:")}
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        cells += [nbformat.v4.new_code_cell(metadata={"tags": [f"grade:{name}"]})
                  for name in _tagged(cell, "solution:") if name in graded and name not in present]
    nb.cells = cells


def _add_reveal_cells(nb) -> None:
    """A written answer without a reveal cell gets one, right after it."""
    present = {answer for cell in nb.cells for answer in _tagged(cell, "reveal:")}
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        cells += [nbformat.v4.new_code_cell(metadata={"tags": [f"reveal:{answer}"]})
                  for answer in (m.rsplit(":", 1)[0] for m in _tagged(cell, "manual:")) if answer not in present]
    nb.cells = cells


def _add_export_cell(nb) -> None:
    """A notebook with written questions ends with the export cell (kept where an author moved it)."""
    if any(_tagged(cell, "manual:") for cell in nb.cells):
        cell = next((c for c in nb.cells if EXPORT_TAG in c.metadata.get("tags", [])), None)
        if cell is None:
            cell = nbformat.v4.new_code_cell(metadata={"tags": [EXPORT_TAG]})
            nb.cells.append(cell)
        cell.source = EXPORT_SOURCE


def build_notebook(section: str, nb) -> object:
    """Return a copy of nb with tagged cells filled in; raise BuildError on a bad tag."""
    nb = nbformat.from_dict(nb)
    defs, imports = solution_segments(section)
    graded = {e.name for e in section_exercises(section)}
    _add_grade_cells(nb, graded)
    _add_reveal_cells(nb)
    _add_export_cell(nb)
    seen_solution = set()
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        names = _tagged(cell, "solution:")
        grades = _tagged(cell, "grade:")
        manual = _tagged(cell, "manual:")
        reveals = _tagged(cell, "reveal:")
        if names:
            missing = [n for n in names if n not in defs]
            if missing:
                raise BuildError(f"{section}: solutions/{section}.py has no definition of {', '.join(missing)}")
            cell.source = "\n\n\n".join(defs[n] for n in names)
            cell.metadata.nbgrader = _nbgrader(f"solution-{names[0]}", grade=False, solution=True, locked=False)
            seen_solution.update(names)
        elif grades:
            (name,) = grades
            if name not in graded:
                raise BuildError(f"{section}: grade:{name} is not an exercise of section {section}")
            exercise_id = f"{section}.{name}"
            cell.source = grade_cell_source(exercise_id)
            cell.metadata.nbgrader = _nbgrader(
                f"grade-{name}", grade=True, solution=False, locked=True, points=EXERCISES[exercise_id].points
            )
        elif manual:
            answer_id, points = manual[0].rsplit(":", 1)
            cell.metadata.nbgrader = _nbgrader(f"answer-{answer_id}", grade=True, solution=True, locked=False,
                                               points=float(points))
        elif "setup" in cell.metadata.get("tags", []):
            absent = [line for line in imports if line not in cell.source]
            if absent:
                raise BuildError(f"{section}: the setup cell lacks imports the solutions use: {absent}")
            cell.metadata.nbgrader = _nbgrader("setup", grade=False, solution=False, locked=True)
        elif cell.cell_type == "code":  # a demonstration; a reveal cell is one too (grading skips it)
            if reveals:
                cell.source = reveal_cell_source(reveals[0])
            if DEMO_TAG not in cell.metadata.get("tags", []):
                cell.metadata.setdefault("tags", []).append(DEMO_TAG)
            cell.metadata[DEMO_KEY] = demo_fingerprint(cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if graded - seen_solution:
        raise BuildError(f"{section}: no solution: cell for {', '.join(sorted(graded - seen_solution))}")
    return nb


def demonstrations(notebooks) -> str:
    """The text of DEMONSTRATIONS_FILE for these built notebooks: each demonstration cell's
    fingerprint as the grader runs what a kernel ran for it (a kernel's history holds IPython's
    transform of the cell)."""
    from IPython.core.inputtransformer2 import TransformerManager

    from course.sandbox.cells import to_python

    transform = TransformerManager().transform_cell
    fingerprints = {demo_fingerprint(to_python(transform(cell.source))) for nb in notebooks for cell in nb.cells
                    if cell.cell_type == "code" and DEMO_KEY in cell.metadata}
    return json.dumps(sorted(fingerprints), indent=0) + "\n"


def model_answers(notebooks) -> str:
    """The text of MODEL_ANSWERS_FILE: each written question's points and model answer."""
    answers = {}
    for nb in notebooks:
        for cell in nb.cells:
            for tag in _tagged(cell, "manual:"):
                answer_id, points = tag.rsplit(":", 1)
                answers[answer_id] = {"points": float(points), "answer": cell.source}
    return json.dumps(answers, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def written_questions(notebooks) -> str:
    """The text of WRITTEN_QUESTIONS_FILE: the written questions in the order of `notebooks`
    (name, notebook) pairs, each with its points and prompt, the nearest markdown cell before its
    answer cell."""
    questions = []
    for name, nb in notebooks:
        prompt = ""
        for cell in nb.cells:
            for tag in _tagged(cell, "manual:"):
                answer_id, points = tag.rsplit(":", 1)
                if not prompt:
                    raise BuildError(f"{name}: no markdown cell asks written question {answer_id} before its answer")
                questions.append({"id": answer_id, "notebook": name, "points": float(points), "prompt": prompt})
            if cell.cell_type == "markdown" and not _tagged(cell, "manual:"):
                prompt = cell.source
    return json.dumps(questions, indent=1, ensure_ascii=False) + "\n"


def _write_derived(path: Path, text: str, check: bool, changed: list[str]) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        changed.append(str(path.relative_to(REPO)))
        if not check:
            path.write_text(text, encoding="utf-8")


def build(sections=None, check: bool = False) -> list[str]:
    """Build every source notebook that exists, and the list of their demonstrations; return
    the paths that changed (or would)."""
    changed, notebooks = [], []  # (folder name, built notebook), in the course's order
    for section in NOTEBOOKS:
        path = notebook_path(section)
        if not path.exists():
            continue
        original = nbformat.read(path, as_version=4)
        built = original if sections and section not in sections else build_notebook(section, original)
        notebooks.append((path.parent.name, built))
        if built is not original and nbformat.writes(built) != nbformat.writes(original):
            changed.append(str(path.relative_to(REPO)))
            if not check:
                nbformat.write(built, path)
    _write_derived(DEMONSTRATIONS_FILE, demonstrations(nb for _, nb in notebooks), check, changed)
    for path in sorted(SOURCE_DIR.glob("*/*.ipynb")):
        if path.parent.name not in NOTEBOOKS.values():  # ungraded, authored whole: the build adds the export cell
            original = nbformat.read(path, as_version=4)
            built = nbformat.from_dict(original)
            _add_export_cell(built)
            notebooks.append((path.parent.name, built))
            if nbformat.writes(built) != nbformat.writes(original):
                changed.append(str(path.relative_to(REPO)))
                if not check:
                    nbformat.write(built, path)
    _write_derived(MODEL_ANSWERS_FILE, model_answers(nb for _, nb in notebooks), check, changed)
    _write_derived(WRITTEN_QUESTIONS_FILE, written_questions(notebooks), check, changed)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help="sections to build (default: all)")
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    args = parser.parse_args(argv)
    try:
        changed = build(args.sections, check=args.check)
    except BuildError as err:
        print(f"build error: {err}", file=sys.stderr)
        return 2
    verb = "out of date" if args.check else "rebuilt"
    for path in changed:
        print(f"{verb}: {path}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
