"""The real nbgrader loop on every source notebook, in a temporary course directory.

generate (all assignments) -> release -> fetch/submit/collect through the exchange for one
assignment; for the others the solved notebooks are placed in submitted/ (nbgrader's
non-interactive route); an untouched release is a second student -> autograde -> manual
grades through the gradebook API -> generate_feedback -> export. nbgrader commands take
several seconds to start, so each runs once over all assignments where it accepts a glob.
"""
import ast
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import get_username

from course.exercises import NOTEBOOKS, section_exercises
from tests.conftest import fill_with_solutions

pytestmark = pytest.mark.xdist_group("nbgrader-course")  # one worker builds the course once

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = {name: section for section, name in NOTEBOOKS.items()
               if (ROOT / "source_notebooks" / name / f"{name}.ipynb").exists()}
COURSE = "positional-encodings"
BLANK = "blank_student"
EXCHANGE_ASSIGNMENT = "06_rope"


def nbgrader(*args, cwd, env):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def solution_windows(section: str, size: int = 3) -> list[str]:
    """Every run of `size` consecutive code lines inside a solution region (docstrings
    excluded): a release containing one has leaked the solution, while a single common
    line (say, the frequency ladder shown in a demo) has not."""
    source = (ROOT / "solutions" / f"{section}.py").read_text()
    docstring_lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and ast.get_docstring(node):
            first = node.body[0]
            docstring_lines.update(range(first.lineno, first.end_lineno + 1))
    windows, region, inside = [], [], False
    for number, line in enumerate(source.splitlines(), start=1):
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            windows += ["\n".join(region[i:i + size]) for i in range(len(region) - size + 1)]
            region, inside = [], "BEGIN" in line
        elif inside and number not in docstring_lines and line.strip() and not line.strip().startswith("#"):
            region.append(line.strip())
    return windows


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    if not ASSIGNMENTS:
        pytest.skip("no source notebooks yet")
    root = tmp_path_factory.mktemp("course")
    student_home = tmp_path_factory.mktemp("student")
    env = dict(os.environ, NBGRADER_EXCHANGE=str(root / "exchange"))
    (root / "exchange").mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copy(ROOT / "nbgrader_config.py", student_home)
    for name in ASSIGNMENTS:
        shutil.copytree(ROOT / "source_notebooks" / name, root / "source_notebooks" / name)
    nbgrader("generate_assignment", "*", "--force", cwd=root, env=env)
    solver = get_username()
    through_exchange = EXCHANGE_ASSIGNMENT if EXCHANGE_ASSIGNMENT in ASSIGNMENTS else next(iter(ASSIGNMENTS))
    nbgrader("release_assignment", through_exchange, cwd=root, env=env)
    nbgrader("fetch_assignment", through_exchange, "--course", COURSE, cwd=student_home, env=env)
    fill_with_solutions(student_home / COURSE / through_exchange / f"{through_exchange}.ipynb",
          root / "source_notebooks" / through_exchange / f"{through_exchange}.ipynb")
    nbgrader("submit", through_exchange, "--course", COURSE, cwd=student_home, env=env)
    nbgrader("collect", through_exchange, cwd=root, env=env)
    for name in ASSIGNMENTS:
        for student in (solver, BLANK):
            folder = root / "submitted" / student / name
            if folder.exists():
                continue  # collected from the exchange
            folder.mkdir(parents=True)
            shutil.copy(root / "release" / name / f"{name}.ipynb", folder)
            (folder / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
            if student == solver:
                fill_with_solutions(folder / f"{name}.ipynb", root / "source_notebooks" / name / f"{name}.ipynb")
    nbgrader("autograde", "*", cwd=root, env=env)
    return root, env


def test_release_has_no_solutions_or_hidden_tests(course):
    root, _ = course
    for name, section in ASSIGNMENTS.items():
        files = sorted(p.name for p in (root / "release" / name).iterdir())
        assert files == [f"{name}.ipynb"], f"release of {name} contains more than the notebook: {files}"
        text = (root / "release" / name / f"{name}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "grade_exercise"):
            assert marker not in text, f"{marker} leaked into the release of {name}"
        released = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
        code = "\n".join(line.strip() for c in released.cells for line in c.source.splitlines() if line.strip())
        leaked = [w for w in solution_windows(section) if w in code]
        assert not leaked, f"solution code leaked into the release of {name}: {leaked[:2]}"


def test_grades_and_feedback(course):
    root, env = course
    solver = get_username()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for name in ASSIGNMENTS:
            for notebook in gradebook.find_submission(name, solver).notebooks:
                for grade in notebook.grades:
                    if grade.name.startswith("answer-"):  # written answers: an instructor grades them
                        grade.manual_score = grade.max_score
            gradebook.db.commit()
    nbgrader("generate_feedback", "*", cwd=root, env=env)
    nbgrader("export", cwd=root, env=env)
    rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(open(root / "grades.csv"))}
    for name, section in ASSIGNMENTS.items():
        solved, blank = rows[(name, solver)], rows[(name, BLANK)]
        assert float(solved["score"]) == float(solved["max_score"]) > 0, (name, solved)
        assert float(blank["score"]) == 0.0, (name, blank)
        autograded = sum(e.points for e in section_exercises(section))
        assert float(solved["max_score"]) > autograded, f"{name} has no manually graded answer"
        feedback = (root / "feedback" / BLANK / name / f"{name}.html").read_text()
        assert "not implemented yet" in feedback, f"{name}: the blank student's feedback does not say what failed"
        solved_feedback = (root / "feedback" / solver / name / f"{name}.html").read_text()
        for exercise in section_exercises(section):
            assert f"{exercise.id}: {exercise.points:g} / {exercise.points:g} points" in solved_feedback
