"""The class report (python -m course.report): a class with known mistakes, graded by course.batch,
gives exactly the expected counts per misconception, per failed check and the expected problem list,
from the batch's students/*.json and from its Gradescope results.json files alike; the page is
self-contained and opens in headless Chromium without console errors (screenshot kept)."""
from __future__ import annotations

import importlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from course.platforms.class_report import analyse, write_class_report
from course.platforms.class_report.misconceptions import misconceptions_in, parse_feedback, title_and_message
from course.platforms.class_report.reading import Learner, read_class
from course.platforms.gradescope.config import Config
from course.platforms.gradescope.run import Run
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import ROOT

pytestmark = pytest.mark.xdist_group("class-report")  # one graded class per run

LIMIT_ARGS = ["--call-seconds", "3", "--cell-seconds", "5", "--exercise-seconds", "3", "--submission-seconds", "60"]
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[^\n]*", re.S | re.M)
SCRIPT = "<script>alert('kim')</script> & <b>bold</b>"


def solution(section: str) -> str:
    return (ROOT / "solutions" / f"{section}.py").read_text()


def with_bug(section: str, bug_id: str) -> str:
    bug = next(b for b in importlib.import_module(f"tests.bank.{section}").BUGS if b.id == bug_id)
    return solution(section) + "\n\n# --- the mistake ---\n" + bug.code


def make_class(root: Path) -> None:
    """12 learners: 3 with RoPE's pairing mistake (one of them also with power-of-two ALiBi slopes),
    2 with power-of-two slopes, 1 rotating the other way, 2 correct, 1 empty, 1 hanging in
    rope_matrix, 1 unreadable, 1 whose module raises after defining everything, 1 with stubs only."""
    root.mkdir(parents=True)
    files = {
        "ana.py": solution("rope"),
        "ben.py": with_bug("rope", "apply_swapped_conventions"),
        "cleo.py": with_bug("rope", "apply_swapped_conventions"),
        "dan/06_rope.py": with_bug("rope", "apply_swapped_conventions"),
        "dan/07_alibi.py": with_bug("alibi", "slopes_power_of_two_formula"),
        "eve.py": with_bug("alibi", "slopes_power_of_two_formula"),
        "fay.py": solution("alibi"),
        "gus.py": with_bug("rope", "apply_wrong_direction"),
        "hal.py": "",
        "ivy.py": solution("rope") + "\n\ndef rope_matrix(d, position, base=10000.0, interleaved=False):\n"
                                     "    while True:\n        pass\n",
        "jo.ipynb": '{"cells": [',
        "kim.py": solution("alibi") + f"\n\nraise ValueError({SCRIPT!r})\n",
        "lee.py": SOLUTION_REGION.sub(r"\1raise NotImplementedError()", solution("rope")),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once by `python -m course.batch` (its main, in this process), which also
    writes report.html and report.json."""
    from course.platforms.batch import main

    base = tmp_path_factory.mktemp("class-report")
    make_class(base / "class")
    out = base / "out"
    previous = signal.getsignal(signal.SIGTERM)  # batch's main makes SIGTERM stop like Ctrl-C
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            code = main([str(base / "class"), "--out", str(out), "--workers", "2", "--no-progress", *LIMIT_ARGS])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 0, printed.getvalue()
    return out, printed.getvalue()


EXPECTED_MISCONCEPTIONS = {  # (key, exercise) -> learners
    ("pairing-convention", "rope.apply_rope"): ["ben", "cleo", "dan"],
    # cached_rope_attention rotates with the learner's apply_rope: the swapped pairing shows there too
    ("pairing-convention", "rope.cached_rope_attention"): ["ben", "cleo", "dan"],
    ("alibi-power-of-two", "alibi.alibi_slopes"): ["dan", "eve"],
    ("rotation-direction", "rope.apply_rope"): ["gus"],
}
ROTATES = "rotates each pair by position times its frequency"
EXPECTED_CHECKS = {  # (exercise, title) -> learners
    ("rope.apply_rope", ROTATES): ["ben", "cleo", "dan", "gus"],
    ("rope.apply_rope", "works on (batch, heads, T, d) with another base"): ["ben", "cleo", "dan", "gus"],
    # their apply_rope also rotates inside cached_rope_attention (the first two checks its feedback lists)
    ("rope.cached_rope_attention", "one call over a left-padded batch equals each row computed alone without padding"):
        ["ben", "cleo", "dan", "gus"],
    ("rope.cached_rope_attention", "prefill then one token per call equals the full pass, row by row"):
        ["ben", "cleo", "dan", "gus"],
    ("alibi.alibi_slopes", "follows the paper's rule for head counts that are not a power of two"): ["dan", "eve"],
    ("rope.rope_matrix", "is orthogonal, and R_m^T R_n = R_(n-m)"): ["ivy"],         # it hangs: every check fails
    ("rope.rope_matrix", "is the matrix R with apply_rope(x, p) == x @ R.T"): ["ivy"],
}
EXPECTED_PROBLEMS = {  # (learner, kind, where)
    ("hal", "empty", "submission"),
    ("ivy", "hung", "rope.rope_matrix"),
    ("jo", "error", "submission"),
    ("kim", "raised", "your module"),
}


def counts(report: dict) -> tuple[dict, dict, set]:
    mistakes = {(m["key"], m["exercise"]): m["students"] for m in report["misconceptions"]}
    checks = {(c["exercise"], c["title"]): c["students"] for c in report["checks"]}
    problems = {(p["student"], p["kind"], p["where"]) for p in report["problems"]}
    return mistakes, checks, problems


def test_batch_writes_the_report_with_exact_counts(graded):
    out, printed = graded
    assert f"report: {out / 'report.html'}" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["source"] == "batch" and report["summary"]["learners"] == 12
    mistakes, checks, problems = counts(report)
    # on failure, say what the grading found: the problems and every learner's record
    found = json.dumps({"problems": report["problems"], "records": {
        p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k not in ("submission_hash", "grading_key")}
        for p in sorted((out / "students").glob("*.json"))}}, indent=1)[:20000]
    assert mistakes == EXPECTED_MISCONCEPTIONS, found
    assert checks == EXPECTED_CHECKS, found
    assert problems == EXPECTED_PROBLEMS, found
    kim = next(p for p in report["problems"] if p["student"] == "kim")
    assert SCRIPT in kim["detail"]
    for m in report["misconceptions"]:  # the notebook section to reread comes from course.exercises
        assert m["where"].startswith("notebook 0")
    exercises = {r["id"]: r for r in report["exercises"]}
    rope_learners = {"ana", "ben", "cleo", "dan", "gus", "ivy", "lee"}
    assert {s["student"] for s in exercises["rope.apply_rope"]["scores"]} == rope_learners
    assert exercises["rope.apply_rope"]["not_attempted"] == 1  # lee's stubs: not attempted, not failed
    assert exercises["rope.apply_rope"]["full_marks"] == 2      # ana, ivy
    assert exercises["alibi.alibi_slopes"]["learners"] == 4     # dan, eve, fay, kim
    times = {t["student"]: t["seconds"] for t in report["times"]}
    assert all(isinstance(times[s], float) for s in rope_learners) and times["jo"] is not None


def unprefixed(found: dict) -> dict:
    return {key: [s.removeprefix("submission_") for s in students] for key, students in found.items()}


def test_gradescope_results_give_the_same_counts(graded, tmp_path):
    out, _ = graded
    batch = json.loads((out / "report.json").read_text())
    # the batch's gradescope/<id>/results.json, as a folder of its own and inside another folder
    shutil.copytree(out / "gradescope", tmp_path / "downloaded" / "gradescope")
    for folder in (out / "gradescope", tmp_path / "downloaded"):
        learners, source = read_class(folder)
        assert source == "gradescope"
        report = analyse(learners, source)
        assert counts(report) == counts(batch)
        seconds = {t["student"]: t["seconds"] for t in batch["times"]}
        assert {t["student"]: t["seconds"] for t in report["times"]} == \
            {s: float(max(0, round(v))) for s, v in seconds.items()}
    # as the autograder itself writes them: tests named "rope.apply_rope (Rotating queries and keys)",
    # every exercise of the assignment listed ("Not graded: ..." when not submitted), visible checks
    for path in sorted((out / "students").glob("*.json")):
        record = json.loads(path.read_text())
        run = Run(tmp_path / "ag", Config(sections=["rope", "alibi"], hidden_visibility="visible"))
        run.report, run.files = record, record["files"]
        run.present = {e["id"].split(".")[0] for e in record["exercises"]}
        target = tmp_path / "autograder" / f"submission_{record['student']}" / "results.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(run.results()))
    learners, source = read_class(tmp_path / "autograder")
    report = analyse(learners, source)
    assert {l.id for l in learners} == {f"submission_{t['student']}" for t in batch["times"]}
    mistakes, checks, problems = counts(report)
    assert (unprefixed(mistakes), unprefixed(checks)) == counts(batch)[:2]
    assert {(s.removeprefix("submission_"), k, w) for s, k, w in problems} == counts(batch)[2]
    done = subprocess.run([sys.executable, "-m", "course.report", str(tmp_path / "downloaded"),
                           "--html", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3  pairing convention swapped" in done.stdout
    assert counts(json.loads((tmp_path / "r.json").read_text())) == counts(batch)


def test_the_page_escapes_learner_text_and_loads_nothing(graded):
    out, _ = graded
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&#x27;kim&#x27;)&lt;/script&gt;" in page
    assert re.findall(r'(?:src|href)="([^"]*)"', page) and all(
        u.startswith("data:image/png;base64,") for u in re.findall(r'(?:src|href)="([^"]*)"', page))
    assert "default-src 'none'" in page


def test_feedback_is_read_robustly():
    feedback = "\n".join([
        "5 of 9 checks fail:",
        "- clips offsets beyond K to the edge rows (K = 0: a single shared row): shaw(...): wrong values at index [0]: "
        "expected 1, got 2. Your output matches rel_k indexed by clip(j - i, -K, K) without adding K (negative "
        "offsets wrap to the end of the table).",
        "- uses its own slopes: f(x) raised ValueError: boom",
        "    Traceback line one",
        "- a new check: f(x): Your output matches a mistake nobody has named yet: with a colon. "
        "Your value matches the other pairing convention.",
        "- ... and 2 more",
        "Reread notebook 05_relative, section 5.2 Shaw relative keys."])
    fb = parse_feedback(feedback)
    assert (fb.failed, fb.ran, fb.hidden) == (5, 9, 2)
    assert [t for t, _ in fb.failures] == ["clips offsets beyond K to the edge rows (K = 0: a single shared row)",
                                          "uses its own slopes", "a new check"]
    assert fb.failures[1][1].endswith("Traceback line one")
    assert [k for k, _, _ in misconceptions_in(fb.failures[0][1])] == ["shaw-no-plus-k"]
    assert [k for k, _, _ in misconceptions_in(fb.failures[2][1])] == [
        "raw:a mistake nobody has named yet: with a colon", "pairing-convention"]
    assert [k for k, _, _ in misconceptions_in("f(x) returned dtype float32, expected float16")] == ["wrong-dtype"]
    assert title_and_message("no colon at all") == ("no colon at all", "")


def test_every_mistake_the_suites_name_is_in_the_table():
    """The names of closest_mistake's candidates (string keys of dicts in grader_tests/) each belong to
    a known misconception, so the same mistake counts once whatever the wording (add a phrase to
    course.platforms.class_report.misconceptions.MISCONCEPTIONS when a suite names a new one)."""
    import ast

    names = {node.value for path in sorted((ROOT / "grader_tests").glob("test_*.py"))
             for d in ast.walk(ast.parse(path.read_text())) if isinstance(d, ast.Dict)
             for node in d.keys if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and len(node.value) > 12}
    assert len(names) > 80
    unknown = [n for n in sorted(names)
               if any(k.startswith("raw:") for k, _, _ in misconceptions_in(f"f(x): wrong. Your output matches {n}."))]
    assert unknown == []


def test_notes_name_cells_that_raised_or_hung_and_nothing_else():
    learner = Learner("x", 4.0, 4.0, [{"id": "rope.apply_rope", "score": 4.0, "max_score": 4.0,
                                       "feedback": "All 18 checks pass."}], notes=[
        "your module: did not finish within 3 s; kept its definitions (time) without the rest of the cell",
        "a.ipynb: cell 4: ValueError: boom: x",
        "cell 7: the Python process running your code ended",
        "x.py: cannot be graded: not a notebook",
        "rope graded through the Hugging Face convention: apply_rope is rotate",
        "b.py also define(s) rope names, but rope is graded on a.py (its own file) only"])
    assert [(p["kind"], p["where"]) for p in analyse([learner], "batch")["problems"]] == [
        ("hung", "your module"), ("raised", "a.ipynb: cell 4"), ("crashed", "cell 7"), ("error", "submission")]


def test_report_of_nothing_says_so(tmp_path):
    with pytest.raises(ValueError, match="neither"):
        write_class_report(tmp_path)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ["COURSE_SCREENSHOTS"]) if os.environ.get("COURSE_SCREENSHOTS") \
        else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_page_opens_in_chromium_without_errors(graded, screenshots):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: bin/setup dev")
    out, _ = graded
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            messages, errors, requests = [], [], []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri(), wait_until="load")
            images = page.evaluate("() => [...document.images].map(i => [i.naturalWidth, i.getBoundingClientRect().bottom])")
            # what to re-teach fits in the first screen: the three tables end above the fold
            bottoms = page.evaluate("() => [...document.querySelectorAll('.grid table')].map(t => t.getBoundingClientRect().bottom)")
            text = page.inner_text("body")
            path = screenshots / "class-report.png"
            page.screenshot(path=str(path))
        finally:
            browser.close()
    print(f"class report screenshot: {path}")
    assert errors == [] and [m for m in messages if m.startswith("error")] == [], (errors, messages)
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert len(images) == 2 and all(w > 0 for w, _ in images), images
    assert len(bottoms) == 3 and max(bottoms) <= 900, bottoms
    assert "pairing convention swapped" in text and SCRIPT in text
