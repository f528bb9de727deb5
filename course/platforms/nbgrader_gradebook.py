"""Sandboxed grades in nbgrader's gradebook: ``python -m course.batch COURSE_DIR --out OUT --gradebook``.

``nbgrader autograde`` runs the grade cells in the student's kernel, where a student can
patch ``grade_exercise`` away. With ``--gradebook``, course.batch grades every collected
``submitted/{student}/{assignment}/`` as its own submission in the sandbox (its warm
workers, resume and error handling), and this module then writes, for each of them, what
``nbgrader autograde`` would have written, through nbgrader's own API and preprocessors:

- the student and the submission (with the timestamp of ``timestamp.txt``) in the gradebook;
- ``autograded/{student}/{assignment}/{notebook}.ipynb``: the submitted notebook passed
  through autograde's sanitizing preprocessors (ClearOutput, DeduplicateIds,
  OverwriteKernelspec, OverwriteCells: locked cells restored from the gradebook,
  CheckCellMetadata); instead of executing it, each grade cell gets the sandboxed grader's
  answer as its output (the points and feedback printed, then the points as the cell's
  value, or an error when there are none), the output nbgrader's ``determine_grade`` reads;
- grades and comments by autograde's own SaveAutoGrades and AssignLatePenalties on that
  notebook (``auto_score``, ``needs_manual_grade``, "No response." comments, late
  penalties). Manual scores and comments are never touched, and re-running updates the
  same rows; a submission already written from the same result (OUT/gradebook.json) is not
  written again, as autograde skips what it graded before.

The other cells of the autograded notebook keep the outputs the student's notebook held (nothing
runs in a kernel: they are the student's, as submitted). A
notebook that cannot be read, or a submission the grader could not finish, gets zero
autograded points and a comment saying why (the written answers are still graded by hand);
a grade cell that calls no course exercise is left for manual grading. Formgrader,
``nbgrader generate_feedback`` and ``nbgrader export`` then work on the gradebook as usual.
nbgrader's settings are read from the course folder's ``nbgrader_config.py`` only.
"""
from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

from course.exercises import EXERCISES
from course.files import write_atomic
from course.grading.report import wrapped
from course.grading.staging import Snapshot, snapshot
from course.sandbox.limits import Limits

GRADE_CALL = re.compile(r"""grade_exercise\(\s*["']([\w.]+)["']""")


def _nbgrader_config(root: Path):
    """The course's nbgrader_config.py (what `nbgrader ...` run in `root` reads from there)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (root / "nbgrader_config.py").is_file():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    return config


def course_directory(root):
    """nbgrader's CourseDirectory of the course in `root` (its folders, db_url, course_id)."""
    from nbgrader.coursedir import CourseDirectory

    root = Path(root).resolve()
    config = _nbgrader_config(root)
    coursedir = CourseDirectory(config=config)
    coursedir.root = str(root)
    return coursedir, config


def gradebook_assignments(root) -> list[str]:
    """The assignments `nbgrader generate_assignment` has put in the course's gradebook."""
    from nbgrader.api import Gradebook

    coursedir, _ = course_directory(root)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        return sorted(a.name for a in gb.assignments)


def grade_cell_exercises(gb, notebook: str, assignment: str) -> dict[str, str | None]:
    """grade_id -> the exercise id its hidden part passes to grade_exercise (None: it calls none),
    read from the source cells nbgrader keeps in the gradebook, for every autograded cell."""
    found = {}
    for cell in gb.find_notebook(notebook, assignment).grade_cells:
        source = gb.find_source_cell(cell.name, notebook, assignment)
        if cell.cell_type == "code" and not _is_solution(gb, cell.name, notebook, assignment):
            match = GRADE_CALL.search(source.source or "")
            found[cell.name] = match.group(1) if match and match.group(1) in EXERCISES else None
    return found


def _is_solution(gb, name: str, notebook: str, assignment: str) -> bool:
    from nbgrader.api import MissingEntry

    try:
        gb.find_solution_cell(name, notebook, assignment)
    except MissingEntry:
        return False
    return True


def _grade_outputs(exercise_id: str, points: float, entry: dict | None, why: str) -> tuple[list, float]:
    """The outputs a grade cell shows (as course.nbgrader_bridge prints them under nbgrader
    autograde) and its score: printed points and feedback, then the points as the cell's value,
    or an error when the exercise earned nothing."""
    import nbformat

    if entry is None:
        score, feedback = 0.0, f"Not graded: {why}"
    else:
        score, feedback = min(float(entry["score"]), points), wrapped(entry["feedback"])
    text = f"{exercise_id}: {score:g} / {points:g} points\n{feedback}".rstrip() + "\n"
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if score > 0:
        outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(score)},
                                              execution_count=None))
    else:
        message = f"{exercise_id}: no points." + (f" {why}" if entry is None else "")
        outputs.append(nbformat.v4.new_output("error", ename="GradingFailed", evalue=message,
                                              traceback=[f"GradingFailed: {message}"]))
    return outputs, score


def _read_or_placeholder(submitted: Path | str, release: Path) -> tuple[object, str]:
    """(notebook, why it could not be read). `submitted`: the notebook's snapshot, or why there is
    none. An unreadable submission is replaced by the released notebook (or an empty one) under a
    note, so the feedback and formgrader have something to show."""
    import nbformat

    why = submitted
    if isinstance(submitted, Path):
        try:
            return nbformat.reads(submitted.read_text(encoding="utf-8-sig"), as_version=4), ""
        except Exception as err:  # noqa: BLE001 - any way a file fails to be a notebook
            why = f"{submitted.name} cannot be read as a notebook ({type(err).__name__}: {str(err)[:300]})"
    try:
        nb = nbformat.read(release, as_version=4)
    except Exception:  # noqa: BLE001
        nb = nbformat.v4.new_notebook()
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**Your submitted notebook could not be shown: {why}.** Below is the notebook as it was released; "
        "its grade cells show what your submission scored."))
    return nb, why


def autograde_notebook(coursedir, config, student: str, assignment: str, notebook: str, record: dict,
                       submitted: Path | str) -> dict:
    """Write autograded/{student}/{assignment}/{notebook}.ipynb and its gradebook rows from the
    batch's `record` for this submission and `submitted` (the notebook's snapshot, or why there is
    none). Returns {grade_id: auto_score}."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

    release = Path(coursedir.format_path(coursedir.release_directory, ".", assignment)) / f"{notebook}.ipynb"
    nb, unreadable = _read_or_placeholder(submitted, release)
    resources = {"unique_key": notebook, "output_files_dir": f"{notebook}_files",
                 "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                              "db_url": coursedir.db_url}}
    # The student's own outputs (their experiments and figures, which a TA grading a written answer
    # needs) are put back after the sanitizing steps, which keep the cells in order; grade cells get
    # the grader's output below.
    shown = [(c.get("outputs"), c.get("execution_count")) if c.cell_type == "code" else None for c in nb.cells]
    for step in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
        nb, resources = step(config=config).preprocess(nb, resources)
    for cell, kept in zip(nb.cells, shown):
        marks = cell.metadata.get("nbgrader", {})
        if kept and cell.cell_type == "code" and not (marks.get("grade") and not marks.get("solution")):
            cell.outputs, cell.execution_count = kept

    why = record.get("error") or ""
    if not why and record.get("status") != "graded":
        why = f"grading ended with status {record.get('status')}"
    entries = {e["id"]: e for e in record.get("exercises", [])}
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        exercises = grade_cell_exercises(gb, notebook, assignment)
        points = {c.name: float(c.max_score) for c in gb.find_notebook(notebook, assignment).grade_cells}
    scores: dict[str, float | None] = {}
    outputs = {}
    for grade_id, exercise_id in exercises.items():
        if exercise_id is None:
            scores[grade_id] = None
            outputs[grade_id] = [nbformat.v4.new_output(
                "stream", name="stdout", text="Not autograded: this cell calls no course exercise (grade it by hand).\n")]
            continue
        missing = why or ("" if exercise_id in entries else "the notebook defines none of the names of this section")
        outputs[grade_id], scores[grade_id] = _grade_outputs(exercise_id, points[grade_id],
                                                             None if why else entries.get(exercise_id), missing)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and grade_id in outputs:
            cell.outputs = outputs[grade_id]

    for step in (SaveAutoGrades, AssignLatePenalties, CheckCellMetadata):
        nb, resources = step(config=config).preprocess(nb, resources)

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        submission = gb.find_submission_notebook(notebook, assignment, student)
        for grade in submission.grades:
            if grade.name in scores:  # also a grade cell the student deleted: the sandbox graded its exercise
                grade.auto_score = scores[grade.name]
                grade.needs_manual_grade = scores[grade.name] is None or grade.manual_score is not None
            elif unreadable:  # a written answer nbformat cannot show: zero if the grader could not read it either
                grade.auto_score = 0.0 if why else None
                grade.needs_manual_grade = not why or grade.manual_score is not None
        for comment in submission.comments:
            if why and (unreadable or comment.name not in points):  # the answers the grade cells grade
                comment.auto_comment = f"Not autograded: {why}"
            elif unreadable:
                comment.auto_comment = f"Not shown: {unreadable}; see the submitted file"
        gb.db.commit()
        result = {g.name: g.auto_score for g in submission.grades}

    destination = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    destination.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, destination / f"{notebook}.ipynb")
    return result


def write_submission(coursedir, config, student: str, assignment: str, record: dict) -> dict:
    """The gradebook rows and autograded/ folder of one (student, assignment), as autograde writes them,
    from one snapshot of the submitted folder (course.grading.staging: no link followed)."""
    source = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    with snapshot([source], Limits().file_mb) as staged:
        return _write_snapshot(coursedir, config, student, assignment, record, staged, source)


def _write_snapshot(coursedir, config, student: str, assignment: str, record: dict, staged: Snapshot,
                    source: Path) -> dict:
    from nbgrader import utils
    from nbgrader.api import Gradebook

    timestamp = coursedir.get_existing_timestamp(str(staged.root))
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        gb.update_or_create_student(student)
        kwargs = {"timestamp": timestamp} if timestamp else {}
        with warnings.catch_warnings():  # nbgrader's add_submission makes SQLAlchemy warn (harmless)
            warnings.simplefilter("ignore")
            gb.update_or_create_submission(assignment, student, **kwargs)
        notebooks = [n.name for n in gb.find_assignment(assignment).notebooks]
    destination = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    # the other submitted files (timestamp.txt, data) go along, as autograde copies them (within the
    # grader's limits of a working copy)
    ignore = coursedir.ignore + ["*.ipynb"]
    for relative, path in staged.copies:
        parts = Path(relative).parts
        if not any(utils.is_ignored(str(staged.root.joinpath(*parts[:i])), ignore) for i in range(1, len(parts) + 1)):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    notebooks_read = {p.relative_to(staged.root).as_posix(): p for p in staged.graded}
    notebooks_read.update({p.name: f"{p.name} {why}" for p, why in staged.refused if p.parent == source.absolute()})
    scores = {}
    for notebook in notebooks:
        if f"{notebook}.ipynb" in notebooks_read:
            scores[notebook] = autograde_notebook(coursedir, config, student, assignment, notebook, record,
                                                  notebooks_read[f"{notebook}.ipynb"])
        else:  # as autograde does for a notebook that was not submitted
            with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
                for grade in gb.find_submission_notebook(notebook, assignment, student).grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gb.db.commit()
            scores[notebook] = "not submitted"
    return scores


def _written(coursedir, student: str, assignment: str) -> bool:
    """Whether the gradebook has this submission and autograded/ its folder."""
    from nbgrader.api import Gradebook, MissingEntry

    if not Path(coursedir.format_path(coursedir.autograded_directory, student, assignment)).is_dir():
        return False
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            return False
    return True


def write_gradebook(root, graded, out) -> dict:
    """Write each (batch Student, record) of an nbgrader course into its gradebook; `graded` comes
    from course.batch with one learner per submitted/{student}/{assignment}/. As `nbgrader autograde`
    skips what it autograded before, a record already written (noted in OUT/gradebook.json) is not
    written again, so the review flags of answers an instructor has graded stay as they are. A
    submission whose grading failed for the grader's own reasons is left out (a re-run grades it)."""
    coursedir, config = course_directory(root)
    known = set(gradebook_assignments(root))
    stamps_path = Path(out) / "gradebook.json"
    try:
        stamps = json.loads(stamps_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamps = {}
    written, unchanged, left_out = [], [], []
    for student, record in graded:
        name, assignment = student.root.name, student.assignment
        stamp = f"{coursedir.db_url} {record.get('submission_hash')} {record.get('graded_at')}"
        if assignment not in known:
            left_out.append(f"{name}/{assignment}: not in the gradebook (run nbgrader generate_assignment {assignment})")
        elif record.get("status") == "grader-failed":
            left_out.append(f"{name}/{assignment}: the grader failed ({record.get('error', '')}); run again")
        elif stamps.get(student.id) == stamp and _written(coursedir, name, assignment):
            unchanged.append(f"{name}/{assignment}")
        else:
            try:
                write_submission(coursedir, config, name, assignment, record)
            except Exception as err:  # noqa: BLE001 - one submission nbgrader cannot take must not stop the rest
                left_out.append(f"{name}/{assignment}: {type(err).__name__}: {err}")
            else:
                written.append(f"{name}/{assignment}")
                stamps[student.id] = stamp
    write_atomic(stamps_path, json.dumps(stamps, indent=1))
    return {"gradebook": coursedir.db_url, "written": written, "unchanged": unchanged, "left_out": left_out,
            "autograded": str(Path(coursedir.format_path(coursedir.autograded_directory, ".", ".")).resolve())}
