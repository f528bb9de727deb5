"""The real nbgrader loop on every source notebook, in a temporary course directory.

generate (all assignments) -> release -> fetch/submit/collect through the exchange for one
assignment; for the others the solved notebooks are placed in submitted/ (nbgrader's
non-interactive route); an untouched release is a second student -> autograde -> manual
grades through the gradebook API -> generate_feedback -> export. nbgrader commands take
several seconds to start, so each runs once over all assignments where it accepts a glob.
"""
import ast
import csv
import importlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import get_username

from course.exercises import EXERCISES, NOTEBOOKS, section_exercises
from course.grading.grader import grade_files
from course.platforms.written import questions
from tests.conftest import fill_with_solutions

pytestmark = pytest.mark.xdist_group("nbgrader-course")  # one worker builds the course once

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = {name: section for section, name in NOTEBOOKS.items()
               if (ROOT / "source_notebooks" / name / f"{name}.ipynb").exists()}
COURSE = "positional-encodings"
BLANK = "blank_student"
EXCHANGE_ASSIGNMENT = "06_rope"
ONE_MISTAKE, MISTAKE_ASSIGNMENT = "one_mistake", "07_alibi"  # right but for power-of-two-only slopes


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


STUDENT_CONFIG = """c = get_config()
c.Exchange.root = {exchange!r}
c.Exchange.path_includes_course = True
c.CourseDirectory.course_id = "positional-encodings"
"""


class Student:
    """The student's side, as a student runs it: their own Unix account (when the tests run as root;
    else this one), their own home with the nbgrader configuration the README gives them, and none
    of the instructor's settings in their environment."""

    def __init__(self, home: Path, exchange: Path):
        self.home, self.uid = home, 65534 if os.geteuid() == 0 else None  # nobody
        if self.uid is not None and not self._can_run_python():
            warnings.warn(f"{sys.executable} cannot be run by uid {self.uid} (a folder on its path is private): "
                          "the student is this user, with their own home and configuration")
            self.uid = None
        config = home / ".jupyter" / "nbgrader_config.py"
        config.parent.mkdir(parents=True)
        config.write_text(STUDENT_CONFIG.format(exchange=str(exchange)))
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
        if self.uid is not None:
            for folder, _, files in os.walk(home):
                for path in (folder, *(os.path.join(folder, f) for f in files)):
                    os.chown(path, self.uid, self.uid)
        self.name = pwd.getpwuid(self.uid).pw_name if self.uid is not None else get_username()

    def _can_run_python(self) -> bool:
        try:
            return subprocess.run([sys.executable, "-c", "pass"], user=self.uid, capture_output=True).returncode == 0
        except OSError:
            return False

    def nbgrader(self, *args):
        ids = {} if self.uid is None else {"user": self.uid, "group": self.uid, "extra_groups": []}
        done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, **ids)
        assert done.returncode == 0, f"student: nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout + done.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    if not ASSIGNMENTS:
        pytest.skip("no source notebooks yet")
    root = tmp_path_factory.mktemp("course")
    shared = Path(tempfile.mkdtemp(prefix="nbgrader-exchange-"))  # outside pytest's private temp folder
    os.chmod(shared, 0o755)
    (shared / "exchange").mkdir(mode=0o777)
    os.chmod(shared / "exchange", 0o777)  # (as an instructor sets it up: every student writes there)
    (shared / "student").mkdir()
    student = Student(shared / "student", shared / "exchange")
    env = dict(os.environ, NBGRADER_EXCHANGE=str(shared / "exchange"))
    shutil.copy(ROOT / "nbgrader_config.py", root)
    for name in ASSIGNMENTS:
        shutil.copytree(ROOT / "source_notebooks" / name, root / "source_notebooks" / name)
    nbgrader("generate_assignment", "*", "--force", cwd=root, env=env)
    solver = student.name
    through_exchange = EXCHANGE_ASSIGNMENT if EXCHANGE_ASSIGNMENT in ASSIGNMENTS else next(iter(ASSIGNMENTS))
    nbgrader("release_assignment", through_exchange, cwd=root, env=env)
    student.nbgrader("fetch_assignment", through_exchange)
    fill_with_solutions(student.home / COURSE / through_exchange / f"{through_exchange}.ipynb",
          root / "source_notebooks" / through_exchange / f"{through_exchange}.ipynb")
    student.nbgrader("submit", through_exchange)
    nbgrader("collect", through_exchange, cwd=root, env=env)
    assert (root / "submitted" / solver / through_exchange).is_dir()
    for name in ASSIGNMENTS:
        for who in (solver, BLANK):
            folder = root / "submitted" / who / name
            if folder.exists():
                continue  # collected from the exchange
            folder.mkdir(parents=True)
            shutil.copy(root / "release" / name / f"{name}.ipynb", folder)
            (folder / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
            if who == solver:
                fill_with_solutions(folder / f"{name}.ipynb", root / "source_notebooks" / name / f"{name}.ipynb")
    if MISTAKE_ASSIGNMENT in ASSIGNMENTS:
        folder = root / "submitted" / ONE_MISTAKE / MISTAKE_ASSIGNMENT
        folder.mkdir(parents=True)
        notebook = folder / f"{MISTAKE_ASSIGNMENT}.ipynb"
        fill_with_solutions(root / "release" / MISTAKE_ASSIGNMENT / notebook.name,
                            root / "source_notebooks" / MISTAKE_ASSIGNMENT / notebook.name, notebook)
        replace_definition(notebook, "alibi_slopes", bug("alibi", "slopes_power_of_two_formula").code)
        (folder / "timestamp.txt").write_text("2026-11-22 10:00:00.000000 UTC")
    nbgrader("autograde", "*", cwd=root, env=env)
    yield root, env, student, through_exchange
    shutil.rmtree(shared, ignore_errors=True)


def bug(section: str, bug_id: str):
    return next(b for b in importlib.import_module(f"tests.bank.{section}").BUGS if b.id == bug_id)


def replace_definition(notebook: Path, name: str, code: str) -> None:
    """The learner's cell for `name` holds `code` instead (a learner's one mistake)."""
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"solution-{name}")
    cell.source = code.strip()
    nbformat.write(nb, notebook)


def test_one_mistake_costs_the_same_points_under_nbgrader_as_in_the_sandbox(course):
    """A learner whose only mistake is in alibi_slopes: `nbgrader autograde` (grade cells in the
    learner's kernel) gives each exercise the points the sandboxed grader gives it (what
    `course.batch --gradebook` writes), so the later exercises that use the learner's own slopes
    keep their points, and a failing visible check does not zero its cell."""
    if MISTAKE_ASSIGNMENT not in ASSIGNMENTS:
        pytest.skip(f"no {MISTAKE_ASSIGNMENT} notebook")
    root = course[0]
    section = ASSIGNMENTS[MISTAKE_ASSIGNMENT]
    notebook = root / "submitted" / ONE_MISTAKE / MISTAKE_ASSIGNMENT / f"{MISTAKE_ASSIGNMENT}.ipynb"
    report = grade_files([notebook])
    sandboxed = {e["id"]: e["score"] for e in report["exercises"]}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(MISTAKE_ASSIGNMENT, MISTAKE_ASSIGNMENT, ONE_MISTAKE)
        autograded = {f"{section}.{g.name.removeprefix('grade-')}": g.auto_score
                      for g in submitted.grades if g.name.startswith("grade-")}
    assert set(autograded) == {e.id for e in section_exercises(section)} == set(sandboxed), (autograded, sandboxed)
    for exercise in section_exercises(section):
        assert autograded[exercise.id] == pytest.approx(sandboxed[exercise.id], abs=1e-6), \
            (exercise.id, autograded, sandboxed)
    wrong = bug("alibi", "slopes_power_of_two_formula").exercise
    assert sandboxed[wrong] < EXERCISES[wrong].points, sandboxed
    assert all(sandboxed[e.id] == e.points for e in section_exercises(section) if e.id != wrong), sandboxed


def test_release_has_no_solutions_or_hidden_tests(course):
    root = course[0]
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
    root, env, student, through_exchange = course
    solver = student.name
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
        written = sum(q.points for q in questions([section]))  # (the bug zoo has none)
        assert float(solved["max_score"]) == autograded + written, f"{name}: max score {solved['max_score']}"
        feedback = (root / "feedback" / BLANK / name / f"{name}.html").read_text()
        assert "not implemented yet" in feedback, f"{name}: the blank student's feedback does not say what failed"
        solved_feedback = (root / "feedback" / solver / name / f"{name}.html").read_text()
        for exercise in section_exercises(section):
            assert f"{exercise.id}: {exercise.points:g} / {exercise.points:g} points" in solved_feedback
    # the student fetches their feedback from the exchange, with their own configuration
    nbgrader("release_feedback", through_exchange, "--student", solver, cwd=root, env=env)  # (who came through it)
    student.nbgrader("fetch_feedback", through_exchange)
    fetched = list((student.home / COURSE / through_exchange / "feedback").glob(f"*/{through_exchange}.html"))
    assert len(fetched) == 1 and fetched[0].read_text() == \
        (root / "feedback" / solver / through_exchange / f"{through_exchange}.html").read_text(), fetched
