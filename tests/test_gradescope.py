"""Gradescope's autograder (python -m course.gradescope build): the zip, and run_autograder run as
Gradescope runs it (AUTOGRADER_ROOT stands for /autograder) on solved, blank, buggy, cheating,
unreadable and hanging submissions; every results.json is checked against the JSON Schema written
from Gradescope's documented format. One test runs setup.sh for real in a fresh virtual environment
(about two minutes; COURSE_SKIP_SETUP_SH=1 skips it outside CI)."""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from course.exercises import EXERCISES, NOTEBOOKS, section_exercises
from course.exercises import where_to_look
from course.grading.grader import grade_file, grade_files
from course.grading.mistakes import MISTAKES
from course.grading.report import note
from course.grading.scoring import scored
from course.grading.suite_runner import TestResult as Check  # (not collected as a test class)
from course.platforms.gradescope.autograder_zip import build, pinned_requirements
from course.platforms.gradescope.config import Config
from course.platforms.gradescope.results import SCHEMA, report_lines, schema_errors
from course.sandbox.limits import Limits
from tests.bank.rope import BUGS
from tests.conftest import ROOT, source_notebook, without_hidden_tests

SECTIONS = ["rope", "alibi"]
VENV_BIN = Path(sys.executable).parent
# Small limits keep broken submissions cheap; correct code answers in milliseconds.
LIMITS = {"call_seconds": 3.0, "cell_seconds": 5.0, "exercise_seconds": 5.0, "file_seconds": 60.0}
LIMIT_ARGS = [arg for k, v in LIMITS.items() for arg in (f"--{k.replace('_', '-')}", f"{v:g}")]


def points(*sections) -> float:
    return float(sum(e.points for s in sections for e in section_exercises(s)))


def validate(results: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(results, schema, cls=jsonschema.Draft202012Validator)


def gradescope_cli(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.gradescope", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    """The zip an instructor builds for an assignment grading rope and alibi (with small limits)."""
    out = tmp_path_factory.mktemp("zip") / "autograder.zip"
    done = gradescope_cli("build", "--out", str(out), "--sections", "rope,alibi", "--time-limit", "120", *LIMIT_ARGS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{points(*SECTIONS):g} points" in done.stdout, done.stdout
    return out


def unpack(zip_path: Path, root: Path) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/ (modes kept), run_autograder copied
    beside it, an empty submission/ and results/."""
    source = root / "source"
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def run_autograder(root: Path, path: str | None = None, timeout: float = 300) -> tuple[dict, str, float]:
    """Run root/run_autograder from root, as Gradescope does; (results.json, stdout, seconds)."""
    env = dict(os.environ, AUTOGRADER_ROOT=str(root),
               PATH=path if path is not None else f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    begin = time.monotonic()
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - begin
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    return results, done.stdout + done.stderr, seconds


def graded(root: Path, zip_path: Path, files: dict, **kwargs) -> tuple[dict, str, float]:
    unpack(zip_path, root)
    for name, content in files.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return run_autograder(root, **kwargs)


def exercise_tests(results: dict) -> dict:
    """exercise id -> its test (the tests with points)."""
    return {t["name"].split(" ", 1)[0]: t for t in results["tests"] if "max_score" in t}


def visible_tests(results: dict) -> dict:
    """section -> its visible-checks test."""
    return {t["name"].split(":", 1)[0]: t for t in results["tests"] if "max_score" not in t}


def check_layout(results: dict, sections=SECTIONS, hidden="after_published") -> None:
    """One visible-checks test per section, then one test per exercise, in notebook order."""
    expected = []
    for section in sections:
        expected.append(f"{section}: visible checks")
        expected += [e.id for e in section_exercises(section)]
    got = [t["name"].split(" (", 1)[0] for t in results["tests"]]
    assert got == expected
    for test in results["tests"]:
        if "max_score" in test:
            exercise = EXERCISES[test["name"].split(" ", 1)[0]]
            assert test["max_score"] == exercise.points and test["visibility"] == hidden
            assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
            assert test["number"].split(".")[0] == str(list(NOTEBOOKS).index(exercise.section) + 1)
        else:
            assert test["visibility"] == "visible" and "score" not in test and test["number"].endswith(".0")
    assert results["score"] == pytest.approx(sum(t.get("score", 0.0) for t in results["tests"]))
    assert results["stdout_visibility"] == "hidden" and results["output_format"] == "text"


# -- the zip ------------------------------------------------------------------------------

def test_zip_holds_the_grader_and_only_the_chosen_hidden_suites(autograder_zip, tmp_path):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        config = json.loads(archive.read("gradescope_config.json"))
        requirements = archive.read("requirements.txt").decode().splitlines()
        setup = archive.read("setup.sh").decode()
        run = archive.read("run_autograder").decode()
    assert {"setup.sh", "run_autograder", "requirements.txt", "course/grade.py", "course/platforms/gradescope/run.py",
            "course/platforms/gradescope/results.schema.json", "grader_tests/conftest.py",
            "grader_tests/test_rope.py", "grader_tests/test_alibi.py"} <= set(names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert not [n for n in names if n.split("/")[0] in ("solutions", "source_notebooks", "tests", ".git")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert sorted(n for n in names if n.startswith("grader_tests/test_")) == \
        ["grader_tests/test_alibi.py", "grader_tests/test_rope.py"]
    assert config["sections"] == SECTIONS and config["hidden_visibility"] == "after_published"
    assert config["limits"]["cell_seconds"] == LIMITS["cell_seconds"] and config["time_limit"] == 120
    assert [r for r in requirements if not r.startswith("#")] == pinned_requirements()
    assert "torch==2.13.0" in requirements and '"torch==2.13.0"' in setup
    assert "download.pytorch.org/whl/cpu" in setup and "course.gradescope run" in run
    for script in ("setup.sh", "run_autograder"):
        with zipfile.ZipFile(autograder_zip) as archive:
            text = archive.read(script).decode()
        done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert done.returncode == 0, f"{script}: {done.stderr}"
        assert not re.search(r"@[A-Z_]+@", text), f"{script}: a placeholder left"
    # the same inputs give the same zip (an instructor can tell whether the autograder changed)
    again, once_more = tmp_path / "again.zip", tmp_path / "once_more.zip"
    assert gradescope_cli("build", "--out", str(again), "--sections", "rope", "--sections", "alibi",
                          "--time-limit", "120", *LIMIT_ARGS).returncode == 0
    build(once_more, Config(sections=["alibi", "rope"], time_limit=120, limits=dict(LIMITS),
                            course_version=json.loads(zipfile.ZipFile(again).read("gradescope_config.json"))["course_version"]))
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(once_more.read_bytes()).digest()


def test_build_refuses_unknown_sections_and_visibilities(tmp_path):
    done = gradescope_cli("build", "--out", str(tmp_path / "a.zip"), "--sections", "rope,bogus")
    assert done.returncode == 2 and "bogus" in done.stderr and not (tmp_path / "a.zip").exists()
    done = gradescope_cli("build", "--out", str(tmp_path / "a.zip"), "--hidden-visibility", "sometimes")
    assert done.returncode == 2 and "sometimes" in done.stderr


def test_default_build_grades_every_section(tmp_path):
    summary = build(tmp_path / "all.zip", Config())
    assert summary["exercises"] == len(EXERCISES) and summary["points"] == sum(e.points for e in EXERCISES.values())
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        suites = [n for n in archive.namelist() if n.startswith("grader_tests/test_")]
    assert len(suites) == len(NOTEBOOKS)


# -- results.json format --------------------------------------------------------------------

def test_schema_follows_gradescopes_format():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {"score": 3.0, "execution_time": 2, "output": "x", "output_format": "text", "visibility": "visible",
            "stdout_visibility": "hidden", "extra_data": {},
            "tests": [{"name": "a", "number": "1.1", "score": 1.0, "max_score": 2.0, "status": "failed",
                       "output": "o", "visibility": "after_published", "tags": ["t"]},
                      {"name": "info", "status": "passed"}],
            "leaderboard": [{"name": "Accuracy", "value": 0.9}, {"name": "Time", "value": 1.5, "order": "asc"}]}
    assert schema_errors(good) == []
    assert schema_errors({"tests": [{"score": 1.0}, {"score": 2.0, "max_score": 2.0}]}) == []  # no top-level score
    bad = [
        {"tests": [{"name": "no score anywhere"}]},
        {**good, "visibility": "sometimes"},
        {**good, "stdout_visibility": "always"},
        {**good, "scroe": 1.0},
        {**good, "tests": [{"name": "a", "score": "1"}]},
        {**good, "tests": [{"name": "a", "score": 1.0, "number": 1}]},
        {**good, "output_format": "latex"},
    ]
    for document in bad:
        assert schema_errors(document), document


def test_the_schema_check_skips_only_the_optional_iri_grammar():
    """A fresh autograder process checks results.json without building jsonschema's optional RFC 3987
    grammar (1.4 s of CPU: the time-limit path must write at once), and still finds every error."""
    code = ("import json, sys\n"
            "from course.platforms.gradescope.results import schema_errors\n"
            "good = {'score': 1.0, 'tests': [{'name': 'a', 'score': 1.0, 'max_score': 1.0}]}\n"
            "print(json.dumps([schema_errors(good), schema_errors({**good, 'visibility': 'sometimes'}),"
            " 'rfc3987_syntax' in sys.modules, sys.modules.get('rfc3987_syntax', 0) is None]))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    good, bad, imported, blocked = json.loads(done.stdout)
    assert good == [] and bad and "visibility" in bad[0]
    assert not imported and not blocked  # not imported, and importable again afterwards


def test_the_time_limit_counts_from_run_autograders_start(tmp_path):
    """`run --started T`: the grader's watchdog fires at T + time limit, its own start-up included
    (under load that start-up took seconds, and the outer limit killed it before it wrote anything)."""
    zip_path = tmp_path / "quick.zip"
    build(zip_path, Config(sections=["rope"], time_limit=12))
    root = unpack(zip_path, tmp_path / "autograder")
    (root / "submission" / "rope.py").write_text("def rope_inv_freq(d, base=10000.0):\n    return None\n\n"
                                                 "while True:\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "course.gradescope", "run", "--root", str(root),
                           "--started", str(time.time() - 11)], cwd=root / "source", capture_output=True, text=True,
                          timeout=60)
    results = json.loads((root / "results" / "results.json").read_text())
    assert done.returncode == 0 and "time limit (12 s) reached" in done.stdout, done.stdout + done.stderr
    assert "Grading stopped after 12 s" in results["output"] and results["execution_time"] >= 12
    # The start-up counts: 11 s before this Run, 1 s is left (a deadline, not a stopwatch on a busy machine).
    from course.platforms.gradescope.run import Run

    run = Run(tmp_path, Config(sections=["rope"], time_limit=12), started=time.time() - 11)
    assert run.deadline - time.monotonic() <= 1.0


def test_a_wall_clock_that_jumped_since_run_autograder_started_does_not_use_up_the_time_limit(tmp_path):
    from course.platforms.gradescope.run import STARTUP_SECONDS, Run

    for started in (time.time() - 10 ** 6, time.time() + 10 ** 6):  # the clock jumped forward, or back
        run = Run(tmp_path, Config(sections=["rope"], time_limit=600), started=started)
        assert 600 - STARTUP_SECONDS - 5 < run.deadline - time.monotonic() <= 600
    run = Run(tmp_path, Config(sections=["rope"], time_limit=600), started=time.time() - 30)
    assert 565 < run.deadline - time.monotonic() <= 570


def test_batch_writes_the_same_format(tmp_path):
    """One test per exercise: its output the recognised mistake first, then the feedback; the
    exercise as data in its extra_data and the rest of the report in the document's, which the
    class report reads back."""
    from course.platforms.batch import gradescope_results
    from course.platforms.class_report.reading import read_class

    exercise = scored("rope.apply_rope", [Check("rotates", False, 1.0, "apply_rope(x): wrong",
                                                     mistake="pairing-convention"), Check("keeps", True, 1.0)])
    record = {"student": "a", "version": 2, "score": exercise["score"], "max_score": 4.0, "seconds": 2.4,
              "status": "graded", "files": ["a.py", "b.py"], "exercises": [exercise],
              "notes": [note("cell_raised", "NameError: x", "a.py", "3")],
              "file_sections": {"a.py": {"sections": ["rope"], "adapted_by": []},
                                "b.py": {"sections": [], "adapted_by": []}}}
    results = gradescope_results(record)
    validate(results)
    test = results["tests"][0]
    assert test["name"] == "rope.apply_rope" and results["execution_time"] == 2
    assert test["output"].splitlines()[0] == (f"Recognised mistake: {MISTAKES['pairing-convention'].label} "
                                              f"(reread {where_to_look('rope.apply_rope')}).")
    assert test["output"] == exercise["feedback"] and "- rotates: apply_rope(x): wrong" in test["output"]
    assert test["extra_data"]["exercise"] == exercise
    assert results["output"] == "note: a.py: cell 3: NameError: x\na.py graded for rope"
    assert results["extra_data"]["report"] == {"version": 2, "notes": record["notes"], "files": record["file_sections"]}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(results))
    [learner], source = read_class(tmp_path)
    assert (source, learner.exercises, learner.notes, learner.seconds) == \
        ("gradescope", [exercise], record["notes"], 2.0)
    failed = gradescope_results({"student": "b", "error": "not a readable notebook", "exercises": []})
    validate(failed)
    assert failed["extra_data"]["report"]["error"] == "not a readable notebook"


# -- run_autograder on submissions ------------------------------------------------------

def solved_rope_notebook() -> str:
    return nbformat.writes(without_hidden_tests(source_notebook("rope")))


def test_solved_submission_gets_full_marks(autograder_zip, tmp_path):
    results, log, _ = graded(tmp_path, autograder_zip, {"06_rope.ipynb": solved_rope_notebook(),
                                                        "more/07_alibi.py": (ROOT / "solutions" / "alibi.py").read_text()})
    check_layout(results)
    assert f"grader: {tmp_path / 'source' / 'course'}" in log  # the zip's grader, not this repository's
    assert results["score"] == points(*SECTIONS), log
    assert all(t["output"].startswith("All ") for t in exercise_tests(results).values())
    for section, test in visible_tests(results).items():
        assert test["status"] == "passed", test["output"]
        assert f"of {len(test['output'].splitlines()) - 1} checks pass" in test["output"]
    assert "run on more/07_alibi.py" in visible_tests(results)["alibi"]["output"]
    assert "Submitted: 06_rope.ipynb, more/07_alibi.py." in results["output"]
    assert "shown when the grades are published" in results["output"]
    assert "Not found" not in results["output"]
    assert results["extra_data"]["files"] == ["06_rope.ipynb", "more/07_alibi.py"]


def test_blank_submission_says_what_to_upload(autograder_zip, tmp_path):
    results, _, seconds = graded(tmp_path, autograder_zip, {"notes.txt": "my answers are on paper"})
    check_layout(results)
    assert results["score"] == 0.0
    assert "No notebook (.ipynb) or Python module (.py) was found" in results["output"]
    assert "notes.txt" in results["output"] and "06_rope.ipynb" in results["output"]
    assert all("no notebook" in t["output"] for t in results["tests"])


def test_buggy_submission_loses_the_points_of_its_bug(autograder_zip, tmp_path):
    bug = next(b for b in BUGS if b.id == "apply_wrong_direction")
    code = (ROOT / "solutions" / "rope.py").read_text() + "\n" + bug.code
    results, log, _ = graded(tmp_path, autograder_zip, {"rope.py": code})
    check_layout(results)
    tests = exercise_tests(results)
    assert tests[bug.exercise]["score"] < tests[bug.exercise]["max_score"]
    assert bug.mistake in tests[bug.exercise]["output"]
    hit = {bug.exercise, *bug.cascades}  # the bug's exercise, and those calling the buggy function
    for exercise in section_exercises("rope"):
        if exercise.id not in hit:
            assert tests[exercise.id]["score"] == exercise.points, tests[exercise.id]
    for exercise in section_exercises("alibi"):
        assert tests[exercise.id]["score"] == 0 and "not defined" in tests[exercise.id]["output"]
    assert visible_tests(results)["rope"]["status"] == "failed"  # a quarter turn goes the wrong way
    assert "FAIL  apply_rope" in visible_tests(results)["rope"]["output"]
    assert "Not found in your submission: alibi (07_alibi.ipynb)" in results["output"]
    lost = sum(tests[i]["max_score"] - tests[i]["score"] for i in hit)
    assert results["score"] == pytest.approx(points(*SECTIONS) - points("alibi") - lost)


def test_visible_checks_join_files_by_their_path_not_their_name(tmp_path):
    """a/work.py (ALiBi) and b/work.py (sinusoidal): each section's visible checks run on its own
    file (they once ran sinusoidal's on a/work.py, the first file of that name, and said "not present")."""
    zip_path = tmp_path / "two.zip"
    build(zip_path, Config(sections=["sinusoidal", "alibi"], time_limit=120, limits=dict(LIMITS)))
    results, log, _ = graded(tmp_path / "autograder", zip_path, {
        "a/work.py": (ROOT / "solutions" / "alibi.py").read_text(),
        "b/work.py": (ROOT / "solutions" / "sinusoidal.py").read_text()})
    check_layout(results, sections=["sinusoidal", "alibi"])
    assert results["score"] == points("sinusoidal", "alibi"), log
    visible = visible_tests(results)
    assert visible["sinusoidal"]["status"] == visible["alibi"]["status"] == "passed", visible
    assert visible["sinusoidal"]["output"].endswith("(run on b/work.py).")
    assert visible["alibi"]["output"].endswith("(run on a/work.py).")
    assert "Not found" not in results["output"]
    assert results["extra_data"]["report"]["files"] == {"a/work.py": {"sections": ["alibi"], "adapted_by": []},
                                                        "b/work.py": {"sections": ["sinusoidal"], "adapted_by": []}}


CHEAT = '''
import json, os, time

ROOT = {root!r}
FORGED = json.dumps({{"score": 999.0, "output": "FORGED", "tests": []}})
attempts = {{}}

def attempt(name, action):
    try:
        action()
        attempts[name] = "done"
    except Exception as err:
        attempts[name] = f"{{type(err).__name__}}"

def forge():
    with open(ROOT + "/results/results.json", "w") as f:
        f.write(FORGED)

def patch_grader():
    with open(ROOT + "/source/course/grade.py", "a") as f:
        f.write("\\nFORGED = True\\n")

def patch_suite():
    with open(ROOT + "/source/grader_tests/test_rope.py", "w") as f:
        f.write("def test_nothing():\\n    pass\\n")

def daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for _ in range(600):
                try:
                    forge()
                except Exception:
                    pass
                time.sleep(0.05)
            os._exit(0)
        os._exit(0)

attempt("forge", forge)
attempt("patch_grader", patch_grader)
attempt("patch_suite", patch_suite)
attempt("daemon", daemon)

def patch_in_process():
    import course.grading.grader
    course.grading.grader._score_exercise = lambda exercise_id, results: {{"id": exercise_id, "score": 99.0,
                                                                  "max_score": 99.0, "feedback": "FORGED"}}

attempt("patch_in_process", patch_in_process)
'''


def source_files(root: Path) -> dict:
    """The autograder's files (not the bytecode the grader's own processes may cache beside them)."""
    return {p: p.read_bytes() for p in (root / "source").rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_cheating_submission_gains_nothing(autograder_zip, tmp_path):
    """A submission that forges results.json (also from a daemon that outlives its cells), rewrites
    the grader and a hidden suite, and patches the grader in its own process: it gets what its wrong
    code is worth, and the autograder's files are untouched."""
    from course.sandbox.learner_process import isolation_status

    root = tmp_path / "autograder"
    unpack(autograder_zip, root)
    before = source_files(root)
    wrong = "\ndef apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):\n    return x.clone()\n"
    code = (ROOT / "solutions" / "rope.py").read_text() + CHEAT.format(root=str(root)) + wrong
    (root / "submission" / "rope.py").write_text(code)
    results, log, _ = run_autograder(root)
    tests = exercise_tests(results)
    honest = tmp_path / "honest.py"  # the same functions without the attacks, graded directly
    honest.write_text((ROOT / "solutions" / "rope.py").read_text() + wrong)
    expected = {e["id"]: e["score"] for e in grade_file(honest, limits=Limits(**LIMITS))["exercises"]}
    assert {i: tests[i]["score"] for i in expected} == expected
    assert expected["rope.apply_rope"] < EXERCISES["rope.apply_rope"].points
    assert results["score"] == pytest.approx(sum(expected.values())) and "FORGED" not in json.dumps(results)
    written = (root / "results" / "results.json").read_text()
    time.sleep(1.5)  # a daemon still alive would have forged it again by now
    assert (root / "results" / "results.json").read_text() == written
    status = isolation_status()
    if status.get("landlock") or status.get("uid") not in (None, "same"):
        # Landlock or a user id of its own: the learner cannot write the autograder's files
        assert source_files(root) == before
    else:
        pytest.skip(f"no Landlock nor user switch here ({status}): the learner's process may write its user's files")


def test_unreadable_submission_gets_a_reason(autograder_zip, tmp_path):
    results, _, _ = graded(tmp_path, autograder_zip, {"06_rope.ipynb": b'{"cells": [', "07_alibi.py": b"\xff\xfe\x00x = 1"})
    check_layout(results)
    assert results["score"] == 0.0
    assert "Could not grade this submission" in results["output"]
    assert "06_rope.ipynb is not a readable notebook" in results["output"] and "UTF-8" in results["output"]
    assert all("not a readable notebook" in t["output"] for t in results["tests"])


def test_hanging_submission_stops_at_the_time_limit(tmp_path):
    """Limits longer than the whole run's: the autograder's own time limit ends grading, and the
    learner still gets a results.json saying why."""
    zip_path = tmp_path / "quick.zip"
    build(zip_path, Config(sections=["rope"], time_limit=12))
    hang = "def rope_inv_freq(d, base=10000.0):\n    return None\n\nwhile True:\n    pass\n"
    results, log, _ = graded(tmp_path / "autograder", zip_path, {"rope.py": hang})
    check_layout(results, sections=["rope"])
    assert results["score"] == 0.0 and results["extra_data"]["stopped"]
    assert "Grading stopped after 12 s" in results["output"]
    assert all("time limit (12 s)" in t["output"] for t in results["tests"])
    assert "time limit (12 s) reached" in log, log  # stopped by the grader itself, not run_autograder's limit


@pytest.mark.parametrize("fake,why", [("exit 3", "exit status 3"), ("exec sleep 600", "ran out of time")])
def test_run_autograder_writes_results_when_the_grader_cannot(tmp_path, fake, why):
    """The grader crashing or hanging past the hard limit (here a python3 that does only that):
    run_autograder itself writes a results.json with score 0 and the reason."""
    zip_path = tmp_path / "quick.zip"
    build(zip_path, Config(sections=["rope"], time_limit=4))
    root = unpack(zip_path, tmp_path / "autograder")
    (root / "submission" / "rope.py").write_text((ROOT / "solutions" / "rope.py").read_text())
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text(f"#!/bin/sh\n{fake}\n")
    (fake_bin / "python3").chmod(0o755)
    results, log, seconds = run_autograder(root, path=f"{fake_bin}{os.pathsep}/usr/bin{os.pathsep}/bin", timeout=120)
    assert results["score"] == 0.0 and results["tests"] == []
    assert why in results["output"] and "could not grade" in results["output"], results
    assert seconds < 4 + 5 + 10 + 5, log


# -- setup.sh, for real -----------------------------------------------------------------

@pytest.mark.xdist_group("gradescope-setup")
@pytest.mark.skipif(bool(os.environ.get("COURSE_SKIP_SETUP_SH")) and not os.environ.get("CI"),
                    reason="COURSE_SKIP_SETUP_SH is set (CI always runs it)")
def test_setup_sh_installs_a_working_grader(autograder_zip, tmp_path):
    """setup.sh as Gradescope runs it: a fresh virtual environment (from the interpreter this venv was
    made from; pip keeps this machine's settings, e.g. its folder of wheels), the pinned packages,
    then that environment alone grades a file, and run_autograder uses it with a bare PATH."""
    root = unpack(autograder_zip, tmp_path / "autograder")
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(AUTOGRADER_ROOT=str(root), PYTHON=base,
               PATH=os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN))
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    python = root / "venv" / "bin" / "python"
    assert "grader ready, torch 2.13.0" in done.stdout, done.stdout[-2000:]
    suites = root / "source" / "grader_tests" / "test_rope.py"
    assert stat.S_IMODE(suites.stat().st_mode) & 0o077 == 0  # other users cannot read the hidden suites
    probe = subprocess.run([str(python), "-c", "import course.grade, torch, sys; print(course.grade.__file__, "
                                               "torch.__version__, sys.prefix)"], cwd=root / "source", env=env,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and str(root / "source" / "course") in probe.stdout, probe.stdout + probe.stderr
    assert str(root / "venv") in probe.stdout and "2.13.0" in probe.stdout, probe.stdout
    grade = subprocess.run([str(python), "-m", "course.grade", str(ROOT / "solutions" / "rope.py"), "--format", "json"],
                           cwd=root / "source", env=env, capture_output=True, text=True, timeout=300)
    assert grade.returncode == 0, grade.stdout[-2000:] + grade.stderr[-2000:]
    assert json.loads(grade.stdout)["score"] == points("rope")
    (root / "submission" / "rope.py").write_text((ROOT / "solutions" / "rope.py").read_text())
    results, log, _ = run_autograder(root, path="/usr/bin:/bin")
    assert exercise_tests(results)["rope.apply_rope"]["score"] == EXERCISES["rope.apply_rope"].points, log
    assert results["score"] == points("rope")


def test_the_summary_names_only_the_sections_a_file_defines():
    """Gradescope grades every section on a lone rope.py; its summary says it was graded for rope,
    not for the seven sections it defines nothing of (those are listed as not found)."""
    report = grade_files([ROOT / "solutions" / "rope.py"], only=list(EXERCISES))
    assert report["files"]["rope.py"]["sections"] == list(NOTEBOOKS)  # the grader's own record
    assert [line for line in report_lines(report) if "graded for" in line] == ["rope.py graded for rope"]
