"""nbgrader's gradebook from the sandboxed grader (python -m course.batch COURSE --gradebook), against
the real `nbgrader autograde`, on one short assignment (07_alibi) and a few students.

One course is generated and copied before grading: `kernel/` is graded by `nbgrader autograde`
(grade cells in the student's kernel), `sandboxed/` by course.batch --gradebook. Honest students
score the same both ways; a student who patches the checks away inside the notebook gets full
marks from nbgrader autograde and none in the sandbox. Then: an unreadable and a hanging
submission, a re-run (no duplicate rows, manual grades kept), and nbgrader's formgrader API,
generate_feedback and export on the sandboxed gradebook.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Comment, Grade, Gradebook, SubmittedAssignment

from course.exercises import section_exercises
from tests.conftest import fill_with_solutions

pytestmark = pytest.mark.xdist_group("nbgrader-gradebook")  # one worker builds both courses once

ROOT = Path(__file__).resolve().parents[1]
NAME = "07_alibi"
HONEST = ("solver", "partial", "blank")
CHEAT = ("\n\nimport course.nbgrader_bridge\n"
         "course.nbgrader_bridge.grade_exercise = lambda exercise_id: None  # nothing left to fail\n"
         "check = lambda *args, **kwargs: None\n")
LIMIT_ARGS = ["--call-seconds", "3", "--cell-seconds", "5", "--exercise-seconds", "5", "--file-seconds", "60"]
# alibi: slopes 3, bias 2, attention 4, cached attention 3 (the written answer is 3 more, graded by hand)
AUTOGRADED_POINTS = float(sum(e.points for e in section_exercises("alibi")))


def run(*args, cwd, env):
    done = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def batch(course: Path, env, *more) -> dict:
    out = run("course.batch", str(course), "--assignment", NAME, "--gradebook", "--out", str(course / "batch"),
              "--workers", "2", "--no-progress", "--summary", "json", *LIMIT_ARGS, *more, cwd=ROOT, env=env)
    return json.loads(out)


def submit(course: Path, student: str, edit=None) -> Path:
    """submitted/{student}/07_alibi/ with a timestamp: the solved notebook, changed by `edit`."""
    folder = course / "submitted" / student / NAME
    folder.mkdir(parents=True)
    (folder / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
    path = folder / f"{NAME}.ipynb"
    release, source = course / "release" / NAME / f"{NAME}.ipynb", course / "source_notebooks" / NAME / f"{NAME}.ipynb"
    if edit is None:
        shutil.copy(release, path)
        return path
    nb = nbformat.read(fill_with_solutions(release, source, path), as_version=4)
    for cell in nb.cells:
        edit(cell, cell.metadata.get("nbgrader", {}).get("grade_id"))
    nbformat.write(nb, path)
    return path


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def partial(cell, grade_id):
    """Positions made on the CPU: the visible checks pass, the hidden device test fails."""
    if grade_id == "solution-alibi_attention":
        assert "torch.arange(t_k, device=q.device)" in cell.source
        cell.source = cell.source.replace("torch.arange(t_k, device=q.device)", "torch.arange(t_k)")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="my own experiment\n"),
                        nbformat.v4.new_output("display_data", data={"image/png": PIXEL})]
    if grade_id == "grade-alibi_attention":  # a forged grade output: replaced by the grader's
        cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "4.0"}, execution_count=1)]


def cheat(cell, grade_id):
    """Nothing implemented; the first answer cell patches the checks and the grader call away."""
    if grade_id and grade_id.startswith("solution-"):
        cell.source = "raise NotImplementedError()"
    if grade_id == "solution-alibi_slopes":
        cell.source = "def alibi_slopes(n_heads):\n    raise NotImplementedError()" + CHEAT


def hang(cell, grade_id):
    if grade_id == "solution-alibi_bias":
        cell.source += "\n\nwhile True:\n    pass\n"


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    base = tmp_path_factory.mktemp("gradebook")
    kernel, sandboxed = base / "kernel", base / "sandboxed"
    # commands started here (nbgrader's kernels, the graders) find the venv first, as in bin/test
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               NBGRADER_EXCHANGE=str(base / "exchange"))
    kernel.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", kernel)
    shutil.copytree(ROOT / "source_notebooks" / NAME, kernel / "source_notebooks" / NAME)
    run("nbgrader", "generate_assignment", NAME, "--force", cwd=kernel, env=env)
    submit(kernel, "solver", lambda cell, grade_id: None)
    submit(kernel, "partial", partial)
    submit(kernel, "blank")
    submit(kernel, "cheater", cheat)
    shutil.copytree(kernel, sandboxed)  # the gradebook holds the assignment, no submission yet
    run("nbgrader", "autograde", NAME, cwd=kernel, env=env)
    broken = sandboxed / "submitted" / "broken" / NAME
    broken.mkdir(parents=True)
    (broken / f"{NAME}.ipynb").write_text('{"cells": [ not a notebook')
    first = batch(sandboxed, env)
    return kernel, sandboxed, env, first


def scores(course: Path, student: str) -> dict:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(NAME, student)
        return {g.name: g.auto_score for nb in submission.notebooks for g in nb.grades}


def comments(course: Path, student: str) -> dict:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {c.name: c.comment for nb in gb.find_submission(NAME, student).notebooks for c in nb.comments}


def test_honest_students_score_the_same_both_ways(courses):
    kernel, sandboxed, _, first = courses
    assert first["graded_now"] == 5 and first["counts"]["error"] == 1, first
    assert sorted(first["gradebook"]["written"]) == sorted(f"{s}/{NAME}" for s in (*HONEST, "cheater", "broken"))
    for student in HONEST:
        assert scores(sandboxed, student) == scores(kernel, student), student
    assert scores(sandboxed, "solver")["grade-alibi_attention"] == 4.0
    assert 0 < scores(sandboxed, "partial")["grade-alibi_attention"] < 4.0  # partial credit, both ways
    assert scores(sandboxed, "solver")["answer-alibi_far_retrieval"] is None  # the written answer: by hand
    with Gradebook(f"sqlite:///{sandboxed / 'gradebook.db'}") as gb:
        assert str(gb.find_submission(NAME, "solver").timestamp) == "2026-11-22 10:00:00"
    # the autograded notebook: the grader's feedback as the grade cells' output, the solutions kept
    nb = nbformat.read(sandboxed / "autograded" / "partial" / NAME / f"{NAME}.ipynb", as_version=4)
    nbformat.validate(nb)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    text = "".join(o.get("text", "") for o in cells["grade-alibi_attention"].outputs)
    shown = f"alibi.alibi_attention: {scores(sandboxed, 'partial')['grade-alibi_attention']:g} / 4 points\n"
    assert text.startswith(shown) and "second device" in text, text  # the gradebook's points, as the cell shows them
    assert "torch.arange(t_k)" in cells["solution-alibi_attention"].source
    # the student's own outputs are kept for whoever grades by hand; a grade cell shows only the grader's
    kept = cells["solution-alibi_attention"].outputs
    assert kept[0].text == "my own experiment\n" and kept[1].data["image/png"] == PIXEL, kept
    assert "4.0" not in [o.get("data", {}).get("text/plain") for o in cells["grade-alibi_attention"].outputs]
    assert (sandboxed / "autograded" / "partial" / NAME / "timestamp.txt").exists()


def test_a_student_patching_the_checks_gets_full_marks_in_the_kernel_only(courses):
    kernel, sandboxed, _, _ = courses
    in_kernel, in_sandbox = scores(kernel, "cheater"), scores(sandboxed, "cheater")
    graded = [name for name in in_kernel if name.startswith("grade-")]
    assert sum(in_kernel[name] for name in graded) == AUTOGRADED_POINTS, in_kernel
    assert sum(in_sandbox[name] for name in graded) == 0.0, in_sandbox
    nb = nbformat.read(sandboxed / "autograded" / "cheater" / NAME / f"{NAME}.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "grade-alibi_slopes"
               for o in c.outputs]
    assert outputs[-1].output_type == "error" and "NotImplementedError" in outputs[0].text, outputs


def test_broken_submissions_rerun_manual_grades_feedback_and_export(courses):
    _, course, env, _ = courses
    assert scores(course, "broken") == dict.fromkeys(scores(course, "solver"), 0.0)
    assert "not a readable notebook" in comments(course, "broken")["solution-alibi_slopes"]
    # the instructor grades the written answer, then a late student's notebook hangs
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("answer-alibi_far_retrieval", NAME, NAME, "solver")
        grade.manual_score, grade.needs_manual_grade = 2.5, False  # as formgrader saves a manual grade
        gb.find_comment("answer-alibi_far_retrieval", NAME, NAME, "solver").manual_comment = "Good, but (c)?"
        gb.db.commit()
        rows = (gb.db.query(SubmittedAssignment).count(), gb.db.query(Grade).count(), gb.db.query(Comment).count())
    assert rows[0] == 5 and rows[1] % 5 == 0 and rows[2] % 5 == 0, rows
    submit(course, "hanger", hang)
    second = batch(course, env, "--student-seconds", "4", "--retries", "0")
    assert (second["graded_now"], second["skipped"]) == (1, 5), second  # only the new student is graded
    assert second["gradebook"]["written"] == [f"hanger/{NAME}"] and len(second["gradebook"]["unchanged"]) == 5
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert (gb.db.query(SubmittedAssignment).count(), gb.db.query(Grade).count(),
                gb.db.query(Comment).count()) == (6, rows[1] // 5 * 6, rows[2] // 5 * 6)  # one more student, no copies
        kept = gb.find_grade("answer-alibi_far_retrieval", NAME, NAME, "solver")
        assert (kept.manual_score, kept.auto_score, kept.needs_manual_grade) == (2.5, None, False)
        assert gb.find_comment("answer-alibi_far_retrieval", NAME, NAME, "solver").comment == "Good, but (c)?"
    hanger = scores(course, "hanger")
    assert [hanger[n] for n in hanger if n.startswith("grade-")] == [0.0] * len(section_exercises("alibi")), hanger
    assert hanger["answer-alibi_far_retrieval"] is None  # still graded by hand
    assert "did not finish within 4 s" in comments(course, "hanger")["solution-alibi_bias"]

    # formgrader's view (its API), then feedback and export as nbgrader writes them
    from nbgrader.apps.api import NbGraderAPI
    from course.platforms.nbgrader_gradebook import course_directory

    api = NbGraderAPI(coursedir=course_directory(course)[0])
    submissions = {s["student"]: s for s in api.get_submissions(NAME)}
    assert submissions["solver"]["score"] == AUTOGRADED_POINTS + 2.5
    assert submissions["hanger"]["needs_manual_grade"] and not submissions["broken"]["needs_manual_grade"]
    assert {n["student"] for n in api.get_notebook_submissions(NAME, NAME)} >= {*HONEST, "cheater", "broken", "hanger"}
    run("nbgrader", "generate_feedback", NAME, cwd=course, env=env)
    run("nbgrader", "export", cwd=course, env=env)
    exported = {r["student_id"]: r for r in csv.DictReader(open(course / "grades.csv"))}
    expected = {"solver": AUTOGRADED_POINTS + 2.5, "blank": 0.0, "cheater": 0.0, "broken": 0.0, "hanger": 0.0}
    for student, score in expected.items():
        assert float(exported[student]["score"]) == score, exported[student]
        assert float(exported[student]["max_score"]) == AUTOGRADED_POINTS + 3
    assert AUTOGRADED_POINTS - 1 < float(exported["partial"]["score"]) < AUTOGRADED_POINTS
    feedback = (course / "feedback" / "partial" / NAME / f"{NAME}.html").read_text()
    shown = f"alibi.alibi_attention: {scores(course, 'partial')['grade-alibi_attention']:g} / 4 points"
    assert 0 < scores(course, "partial")["grade-alibi_attention"] < 4
    assert shown in feedback and "Create positions, slopes and masks" in feedback
    assert "def test_" not in feedback  # the hidden suites never reach the notebooks
    assert "did not finish within 4 s" in (course / "feedback" / "hanger" / NAME / f"{NAME}.html").read_text()


def test_links_in_a_submitted_folder_are_not_followed(courses, tmp_path):
    """A student's notebook and data file that are links to the course's solved notebook and a hidden
    suite, or an assignment folder that is a link to the course's sources: autograded/ gets neither,
    and nothing of them is graded as the student's."""
    from course.platforms.nbgrader_gradebook import course_directory, write_submission

    _, sandboxed, _, _ = courses
    course = tmp_path / "course"
    shutil.copytree(sandboxed, course, symlinks=True)
    solved, hidden = course / "source_notebooks" / NAME / f"{NAME}.ipynb", ROOT / "grader_tests" / "test_alibi.py"
    linker = course / "submitted" / "linker" / NAME
    linker.mkdir(parents=True)
    (linker / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
    (linker / f"{NAME}.ipynb").symlink_to(solved)
    (linker / "notes.txt").symlink_to(hidden)
    (course / "submitted" / "mover").mkdir()
    (course / "submitted" / "mover" / NAME).symlink_to(solved.parent)
    coursedir, config = course_directory(course)
    for student in ("linker", "mover"):
        assert write_submission(coursedir, config, student, NAME, {"status": "graded", "exercises": []}) == \
            {NAME: "not submitted"}
        assert set(scores(course, student).values()) == {0.0}
        written = course / "autograded" / student / NAME
        texts = [p.read_text(errors="replace") for p in written.rglob("*") if p.is_file()]
        assert not [t for t in texts if "BEGIN SOLUTION" in t or "Hidden suite" in t], texts
    assert (course / "autograded" / "linker" / NAME / "timestamp.txt").is_file()
