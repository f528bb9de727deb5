"""The grader's command-line contract, on solutions, other correct styles and odd submissions."""
import io
import json
import re
import subprocess
import sys

import nbformat
import pytest

from course.exercises import EXERCISES, NOTEBOOKS, section_exercises
from course.grading.grader import grade_file, grade_files
from course.grading.report import rendered_notes
from tests.conftest import ROOT, alternative_exercises, alternatives, source_notebook, without_hidden_tests

SECTIONS = list(NOTEBOOKS)


def cli(*args):
    done = subprocess.run([sys.executable, "-m", "course.grade", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)
    return done.returncode, done.stdout, done.stderr


def full_marks(report, section):
    ids = [e.id for e in section_exercises(section)]
    got = {e["id"]: (e["score"], e["max_score"], e["feedback"]) for e in report["exercises"]}
    assert sorted(got) == sorted(ids), f"graded {sorted(got)}, expected {ids}"
    low = {i: g for i, g in got.items() if g[0] != g[1]}
    assert not low, low


@pytest.mark.parametrize("section", SECTIONS)
def test_solutions_get_full_marks(section):
    full_marks(grade_file(ROOT / "solutions" / f"{section}.py"), section)


@pytest.mark.parametrize("path", alternatives(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_other_correct_styles_get_full_marks(path):
    ids = alternative_exercises(path)
    report = grade_file(path, only=ids)
    assert sorted(e["id"] for e in report["exercises"]) == sorted(ids)
    low = {e["id"]: e["feedback"] for e in report["exercises"] if e["score"] != e["max_score"]}
    assert not low, low


@pytest.mark.parametrize("section", ["rope", "alibi"])
def test_solution_notebook_gets_full_marks_through_the_cli(section):
    code, out, _ = cli(source_notebook(section), "--format", "json")
    assert code == 0
    report = json.loads(out)
    full_marks(report, section)
    assert report["score"] == report["max_score"] == sum(e.points for e in section_exercises(section))


@pytest.mark.parametrize("section", ["rope", "alibi"])
def test_released_notebook_scores_zero_and_says_why(section, released):
    report = grade_file(released[section])
    assert report["score"] == 0 and report["max_score"] == sum(e.points for e in section_exercises(section))
    for entry in report["exercises"]:
        assert "NotImplementedError" in entry["feedback"] or "not defined" in entry["feedback"], entry


def test_text_format_lists_every_exercise():
    code, out, _ = cli(ROOT / "examples" / "rope_attempt.py")
    assert code == 0
    for exercise in section_exercises("rope"):
        assert exercise.id in out
    assert "matches the other pairing convention" in out
    assert "Total:" in out.splitlines()[-1]


_ORPHANS = """
import ctypes, os, subprocess, sys, tempfile, time
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER: what the command leaves comes here
with tempfile.TemporaryFile() as err:  # not a pipe: reading one to its end would wait for whoever holds it
    done = subprocess.run([sys.executable, "-m", "course.grade", *sys.argv[1:]], stdout=subprocess.DEVNULL, stderr=err)
    err.seek(0)
    assert done.returncode == 0, err.read().decode()[-2000:]
deadline = time.monotonic() + 5  # the fork server leaves once the command's end of its channel is closed
while time.monotonic() < deadline:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        sys.exit(0)
    time.sleep(0.05)
left = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
        == str(os.getpid())]
message = "still running: " + "; ".join(open(f"/proc/{p}/cmdline").read().replace(chr(0), " ") for p in left)
for p in left:
    os.kill(int(p), 9)
sys.exit(message)
"""


def test_no_process_outlives_the_command():
    """Every process `python -m course.grade` starts (the fork server, the learner processes) ends with it:
    run under a subreaper, nothing of its tree is left a few seconds after it exits."""
    done = subprocess.run([sys.executable, "-c", _ORPHANS, str(ROOT / "solutions" / "rope.py")],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("content,why", [
    (b"\x80\x81 not utf-8", "not UTF-8"),
    (b'{"cells": 3', "not a readable notebook"),
])
def test_unreadable_submission_gives_an_error_report(tmp_path, content, why):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    code, out, _ = cli(path, "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["exercises"] == [] and report["score"] == 0 and why in report["error"]


def test_missing_file_and_wrong_kind(tmp_path):
    (tmp_path / "notes.txt").write_text("def apply_rope(): pass")
    for path, why in ((tmp_path / "absent.py", "not a file"), (tmp_path / "notes.txt", "expected a .ipynb")):
        code, out, _ = cli(path, "--format", "json")
        assert code == 0 and why in json.loads(out)["error"]


def _notebook(tmp_path, *sources, version=4):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "sub.ipynb"
    if version == 3:
        from nbformat.v3 import new_code_cell, new_notebook, new_worksheet
        nb3 = new_notebook(worksheets=[new_worksheet(cells=[new_code_cell(input=s) for s in sources])])
        path.write_text(nbformat.v3.writes_json(nb3))
    else:
        nbformat.write(nb, path)
    return path


def test_magics_and_shell_escapes_are_not_run_and_failing_cells_do_not_stop_later_ones(tmp_path):
    marker = tmp_path / "shell-ran"
    rope = (ROOT / "solutions" / "rope.py").read_text()
    path = _notebook(tmp_path, "%matplotlib inline\n!touch " + str(marker), "%%time\nx = 1",
                     "raise RuntimeError('my experiment broke')", rope, "y = undefined_name")
    report = grade_file(path)
    assert not marker.exists(), "a shell escape was executed"
    full_marks(report, "rope")
    assert any("my experiment broke" in note for note in rendered_notes(report))
    assert any("undefined_name" in note for note in rendered_notes(report))


def test_nbformat_3_notebooks_are_read(tmp_path):
    path = _notebook(tmp_path, (ROOT / "solutions" / "alibi.py").read_text(), version=3)
    assert json.loads(path.read_text())["nbformat"] == 3
    full_marks(grade_file(path), "alibi")


def test_missing_and_crashing_names_score_zero_with_feedback(tmp_path):
    path = tmp_path / "partial.py"
    path.write_text((ROOT / "solutions" / "alibi.py").read_text()
                    + "\n\ndef alibi_bias(slopes, q_pos, k_pos):\n    return slopes[99]\n"
                    + "\ndel alibi_attention\n")
    report = {e["id"]: e for e in grade_file(path)["exercises"]}
    assert report["alibi.alibi_slopes"]["score"] == EXERCISES["alibi.alibi_slopes"].points
    assert report["alibi.alibi_bias"]["score"] == 0
    assert "raised IndexError" in report["alibi.alibi_bias"]["feedback"]
    assert "return slopes[99]" in report["alibi.alibi_bias"]["feedback"], "the learner's own line is shown"
    assert report["alibi.alibi_attention"]["feedback"] == "`alibi_attention` is not defined in your submission."


def test_only_the_sections_touched_are_graded(tmp_path):
    path = tmp_path / "one.py"
    path.write_text("import torch\n\ndef alibi_slopes(n_heads):\n    return torch.ones(n_heads)\n")
    report = grade_file(path)
    assert {e["id"] for e in report["exercises"]} == {e.id for e in section_exercises("alibi")}
    nothing = tmp_path / "none.py"
    nothing.write_text("x = 1\n")
    code, out, _ = cli(nothing, "--format", "json")
    report = json.loads(out)
    assert code == 0 and (report["score"], report["max_score"], report["exercises"]) == (0.0, 0.0, [])


def test_a_folder_is_one_submission_and_each_section_is_graded_on_its_own_notebook(tmp_path):
    """`course.grade FOLDER`: every file runs in its own process; rope is graded on 06_rope.ipynb
    although a scratch file also defines (wrong) rope functions; alibi on the file defining it."""
    folder = tmp_path / "learner"
    folder.mkdir()
    nbformat.write(without_hidden_tests(source_notebook("rope")), folder / "06_rope.ipynb")
    (folder / "scratch.py").write_text("import torch\n\ndef rope_inv_freq(d, base=10000.0):\n"
                                       "    return torch.ones(d // 2)\n")
    (folder / "my_alibi.py").write_text((ROOT / "solutions" / "alibi.py").read_text())
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "06_rope-checkpoint.ipynb").write_text("not JSON: never read")
    code, out, err = cli(folder, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    full_marks({"exercises": [e for e in report["exercises"] if e["id"].startswith("rope.")]}, "rope")
    full_marks({"exercises": [e for e in report["exercises"] if e["id"].startswith("alibi.")]}, "alibi")
    assert len(report["exercises"]) == len(section_exercises("rope")) + len(section_exercises("alibi"))
    assert {f: e["sections"] for f, e in report["files"].items()} == \
        {"06_rope.ipynb": ["rope"], "my_alibi.py": ["alibi"], "scratch.py": []}
    assert "scratch.py also define(s) rope names, but rope is graded on 06_rope.ipynb (its own file) only" \
        in rendered_notes(report), rendered_notes(report)
    code, text, _ = cli(folder)
    assert "file 06_rope.ipynb: graded for rope" in text and "file scratch.py: no graded section" in text


def test_among_several_files_one_defining_no_graded_name_is_not_run(tmp_path):
    """A workspace's lab notebook defines none of the names grading looks for: it is not run (its
    cells would raise here), named in a note; a file whose names cannot be told (a star import) and
    a lone file run."""
    folder = tmp_path / "learner"
    folder.mkdir()
    (folder / "my_alibi.py").write_text((ROOT / "solutions" / "alibi.py").read_text())
    lab = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch\nlosses = {}"),
                                          nbformat.v4.new_code_cell("raise RuntimeError('the lab ran')")])
    nbformat.write(lab, folder / "09_lab.ipynb")
    (folder / "star.py").write_text("from math import *\nraise RuntimeError('star ran')\n")
    report = grade_files(sorted(folder.iterdir()))
    full_marks(report, "alibi")
    assert report["files"]["09_lab.ipynb"] == {"sections": [], "adapted_by": []}
    kinds = {(n["kind"], n["file"]) for n in report["notes"]}
    assert ("not_run", "09_lab.ipynb") in kinds and ("cell_raised", "star.py") in kinds, report["notes"]
    assert not any(n["file"] == "09_lab.ipynb" and n["kind"] == "cell_raised" for n in report["notes"])
    alone = grade_files([folder / "09_lab.ipynb"])
    assert any(n["kind"] == "cell_raised" and "the lab ran" in n["detail"] for n in alone["notes"]), alone


def test_serve_answers_each_request_and_survives_a_bad_one():
    """`course.grade --serve` (the nbgrader bridge's and the batch workers' grader): one JSON line
    per request, a broken request reported as the grader's failure, and the next still graded."""
    from course.grading.grader import serve
    from course.sandbox.limits import Limits

    rope = str(ROOT / "solutions" / "rope.py")
    requests = io.StringIO("\n".join([
        "not json", "", json.dumps({"id": "b", "request": {"paths": rope}}),
        json.dumps({"id": "c", "request": {"paths": [rope], "only": ["rope.no_such_thing"]}}),
        json.dumps({"id": "a", "request": {"paths": [rope], "only": ["rope.rope_inv_freq"]}})]) + "\n")
    replies = io.StringIO()
    serve(Limits(), requests, replies)
    bad, bad_paths, bad_only, good = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert bad["grader_failed"] and "grading failed" in bad["report"]["error"] and bad["id"] is None
    assert "paths must be a list of strings" in bad_paths["report"]["error"] and bad_paths["id"] == "b"
    assert "unknown exercise ids" in bad_only["report"]["error"]
    assert good["id"] == "a" and not good["grader_failed"] and good["seconds"] > 0
    assert [(e["id"], e["score"]) for e in good["report"]["exercises"]] == [("rope.rope_inv_freq", 1.0)]


@pytest.mark.parametrize("demo", ["import time\ntime.sleep(600)", "import os\nos._exit(3)"])
def test_a_cell_whose_demo_hangs_or_crashes_keeps_its_definitions(tmp_path, demo):
    """A cell that defines the functions and then runs a demo that hangs (or ends the process):
    the definitions are replayed without the demo, so correct code keeps its points."""
    from course.sandbox.limits import Limits

    rope = (ROOT / "solutions" / "rope.py").read_text()
    path = _notebook(tmp_path, rope + "\n" + demo + "\n", "print(apply_rope)")
    report = grade_file(path, limits=Limits(cell_seconds=4))
    full_marks(report, "rope")
    assert any("cell 1" in note and "kept its definitions (" in note and "apply_rope" in note
               for note in rendered_notes(report)), rendered_notes(report)


def test_a_broken_hidden_suite_is_a_grader_error_that_says_where(tmp_path):
    """Not the learner's fault: grading stops with the suite's own error and where it is."""
    import os
    import shutil

    from course.locations import SUITES_ENV

    suites = tmp_path / "suites"
    shutil.copytree(ROOT / "grader_tests", suites)
    (suites / "test_rope.py").write_text((suites / "test_rope.py").read_text() + "\nimport no_such_helper_module\n")
    done = subprocess.run([sys.executable, "-m", "course.grade", str(ROOT / "solutions" / "rope.py")],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, SUITES_ENV: str(suites)})
    assert done.returncode == 1 and "grading failed: the hidden suites could not run" in done.stderr, done.stderr
    assert re.search(r"(?s)test_rope\.py.*No module named 'no_such_helper_module'", done.stderr), done.stderr
    # A grading collects only the suites it needs; a long-lived grader checks them all as it starts.
    alibi = subprocess.run([sys.executable, "-m", "course.grade", str(ROOT / "solutions" / "alibi.py")],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, SUITES_ENV: str(suites)})
    assert alibi.returncode == 0 and "Total: " in alibi.stdout, alibi.stderr
    worker = subprocess.run([sys.executable, "-c", "from course.grading.grader import warm_up; warm_up()"],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, SUITES_ENV: str(suites)})
    assert worker.returncode != 0 and "SuiteError" in worker.stderr, worker.stderr[-2000:]
    assert re.search(r"(?s)test_rope\.py.*No module named 'no_such_helper_module'", worker.stderr), worker.stderr[-2000:]


def test_a_function_that_hangs_is_not_said_to_skip_its_argument_checks(tmp_path):
    """add_positions looping forever: its argument checks end because it hung (or the exercise's time
    ran out), not because it returned without a ValueError, so no such mistake is named."""
    from course.sandbox.limits import Limits

    path = tmp_path / "hangs.py"
    path.write_text((ROOT / "solutions" / "setup.py").read_text()
                    + "\n\ndef add_positions(x, table, position_ids=None):\n    while True:\n        pass\n")
    report = grade_files([path], only=["setup.add_positions"],
                         limits=Limits(call_seconds=1.0, exercise_seconds=3.0, file_seconds=60.0))
    [exercise] = report["exercises"]
    assert exercise["score"] == 0 and exercise["mistakes"] == [], exercise["mistakes"]
    assert all(c["halted"] == "hung" for c in exercise["checks"] if c["outcome"] == "failed")
