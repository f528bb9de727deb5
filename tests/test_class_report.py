"""The class report (python -m course.report): a class with known mistakes, graded by course.batch,
gives exactly the expected rows per misconception (grouped across exercises), per failed check and
the expected problem list, from the batch's students/*.json and from its Gradescope results.json
files alike; reports built from the grader's scoring helpers show the grouping, half-precision
angles counted, the top ten, and problems from typed notes; the page is self-contained and opens
in headless Chromium without console errors (screenshot kept)."""
from __future__ import annotations

import html
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

from course.exercises import where_to_look
from course.grading.mistakes import MISTAKES, described
from course.grading.report import note, schema_errors
from course.grading.scoring import not_graded, scored
from course.grading.suite_runner import TestResult as Check  # (not collected as a test class)
from course.platforms.class_report import analyse, write_class_report
from course.platforms.class_report.page import render_html
from course.platforms.class_report.reading import Learner, read_class
from course.platforms.gradescope.config import Config
from course.platforms.gradescope.run import Run
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import ROOT

pytestmark = pytest.mark.xdist_group("class-report")  # one graded class per run

LIMIT_ARGS = ["--call-seconds", "3", "--cell-seconds", "5", "--exercise-seconds", "3", "--file-seconds", "60"]
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[^\n]*", re.S | re.M)
SCRIPT = "<script>alert('kim')</script> & <b>bold</b>"


def solution(section: str) -> str:
    return (ROOT / "solutions" / f"{section}.py").read_text()


def with_bug(section: str, bug_id: str) -> str:
    bug = next(b for b in importlib.import_module(f"tests.bank.{section}").BUGS if b.id == bug_id)
    return solution(section) + "\n\n# --- the mistake ---\n" + bug.code


def make_class(root: Path) -> None:
    """13 learners, each mistake one whose key the grader recognises today (course.checking: a wrong
    dtype, no ValueError): ben, cleo and dan return a wrong dtype (in three exercises), dan, eve and
    gus accept bad arguments (in three exercises, dan's in ALiBi); ana and fay correct; hal empty;
    ivy hanging in rope_matrix; jo an unreadable notebook; kim's module raises after defining
    everything; lee stubs only; max a module that does not parse."""
    root.mkdir(parents=True)
    files = {
        "ana.py": solution("rope"),
        "ben.py": with_bug("rope", "module_returns_float32"),
        "cleo.py": with_bug("rope", "cached_returns_float32"),
        "dan/06_rope.py": with_bug("rope", "perm_float"),
        "dan/07_alibi.py": with_bug("alibi", "cached_no_mask_length_check"),
        "eve.py": with_bug("rope", "cached_no_mask_length_check"),
        "fay.py": solution("alibi"),
        "gus.py": with_bug("rope", "apply_no_rotary_dim_check"),
        "hal.py": "",
        "ivy.py": solution("rope") + "\n\ndef rope_matrix(d, position, base=10000.0, interleaved=False):\n"
                                     "    while True:\n        pass\n",
        "jo.ipynb": '{"cells": [',
        "kim.py": solution("alibi") + f"\n\nraise ValueError({SCRIPT!r})\n",
        "lee.py": SOLUTION_REGION.sub(r"\1raise NotImplementedError()", solution("rope")),
        "max.py": solution("rope") + "\n\ndef broken(:\n    pass\n",
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


EXPECTED_MISCONCEPTIONS = [  # (key, learners, {exercise: learners}), most learners first, then notebook order
    ("no-value-error", ["dan", "eve", "gus"],
     {"rope.apply_rope": ["gus"], "rope.cached_rope_attention": ["eve"], "alibi.cached_alibi_attention": ["dan"]}),
    ("wrong-dtype", ["ben", "cleo", "dan"],
     {"rope.interleaved_to_half_split": ["dan"], "rope.RotaryEmbedding": ["ben"],
      "rope.cached_rope_attention": ["cleo"]}),
]
REJECTS_MASK = "rejects an attention_mask that does not cover T_past + T_new tokens with a ValueError naming it"
EXPECTED_CHECKS = {  # (exercise, title) -> learners
    ("rope.apply_rope", "rejects a rotary_dim that is odd or outside 2..d"): ["gus"],
    ("rope.interleaved_to_half_split", "maps the interleaved convention onto the half-split one"): ["dan"],
    ("rope.RotaryEmbedding", "keeps float16 inputs in float16 and accurate"): ["ben"],
    ("rope.cached_rope_attention",
     "keeps float16/bfloat16 inputs in their dtype through prefill and decode, computing in float32"): ["cleo"],
    ("rope.cached_rope_attention", REJECTS_MASK): ["eve"],
    ("alibi.cached_alibi_attention", REJECTS_MASK): ["dan"],
    # it hangs: every check fails, and every one is counted (none hidden behind a cap)
    ("rope.rope_matrix", "is orthogonal, and R_m^T R_n = R_(n-m)"): ["ivy"],
    ("rope.rope_matrix", "is the matrix R with apply_rope(x, p) == x @ R.T"): ["ivy"],
    ("rope.rope_matrix", "returns a float32 (d, d) matrix"): ["ivy"],
}
EXPECTED_PROBLEMS = {  # (learner, kind, where)
    ("hal", "empty", "submission"),
    ("ivy", "hung", "rope.rope_matrix"),
    ("jo", "error", "submission"),
    ("kim", "raised", "kim.py: your module"),
    ("max", "unreadable", "max.py: your module"),
}


def counts(report: dict) -> tuple[list, dict, set]:
    mistakes = [(m["key"], m["students"], {e["id"]: e["students"] for e in m["exercises"]})
                for m in report["misconceptions"]]
    checks = {(c["exercise"], c["title"]): c["students"] for c in report["checks"]}
    problems = {(p["student"], p["kind"], p["where"]) for p in report["problems"]}
    return mistakes, checks, problems


def test_batch_writes_the_report_with_exact_counts(graded):
    out, printed = graded
    assert f"report: {out / 'report.html'}" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["version"] == 2 and report["source"] == "batch" and report["summary"]["learners"] == 13
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
    for m in report["misconceptions"]:  # label and section to reread: course/grading/mistakes.py, course.exercises
        assert m["label"] == MISTAKES[m["key"]].label and m["learners"] == len(m["students"])
        assert [e["where"] for e in m["exercises"]] == [described(m["key"], e["id"])["where"] for e in m["exercises"]]
        assert m["where"] == list(dict.fromkeys(described(m["key"], e["id"])["where"] for e in m["exercises"]))
    exercises = {r["id"]: r for r in report["exercises"]}
    rope_learners = {"ana", "ben", "cleo", "dan", "eve", "gus", "ivy", "lee", "max"}
    assert {s["student"] for s in exercises["rope.apply_rope"]["scores"]} == rope_learners
    assert exercises["rope.apply_rope"]["not_attempted"] == 1  # lee's stubs: not attempted, not failed
    assert exercises["rope.apply_rope"]["not_parsed"] == 1     # max's module does not parse: 0, not left out
    assert exercises["rope.apply_rope"]["full_marks"] == 6     # all but gus, lee and max
    assert exercises["alibi.alibi_slopes"]["learners"] == 3    # dan, fay, kim
    times = {t["student"]: t["seconds"] for t in report["times"]}
    assert all(isinstance(times[s], float) for s in rope_learners) and times["jo"] is not None


def unprefixed(found: tuple) -> tuple:
    """counts() of a class whose learners are named submission_<name>, as named in the batch."""
    mistakes, checks, problems = found
    names = lambda students: [s.removeprefix("submission_") for s in students]  # noqa: E731
    return ([(key, names(students), {e: names(s) for e, s in by.items()}) for key, students, by in mistakes],
            {key: names(students) for key, students in checks.items()},
            {(s.removeprefix("submission_"), kind, where) for s, kind, where in problems})


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
        assert report["exercises"] == batch["exercises"]
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
    assert unprefixed(counts(report)) == counts(batch)
    done = subprocess.run([sys.executable, "-m", "course.report", str(tmp_path / "downloaded"),
                           "--html", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"3  {MISTAKES['no-value-error'].label}  [rope.apply_rope, rope.cached_rope_attention, " \
           "alibi.cached_alibi_attention]" in done.stdout, done.stdout
    assert counts(json.loads((tmp_path / "r.json").read_text())) == counts(batch)


def test_the_page_escapes_learner_text_and_loads_nothing(graded):
    out, _ = graded
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&#x27;kim&#x27;)&lt;/script&gt;" in page
    assert re.findall(r'(?:src|href)="([^"]*)"', page) and all(
        u.startswith("data:image/png;base64,") for u in re.findall(r'(?:src|href)="([^"]*)"', page))
    assert "default-src 'none'" in page


def exercise(exercise_id: str, *failures: tuple[str, str | None], stub: bool = False, **facts) -> dict:
    """An exercise as the grader scores it (course.grading.scoring): one passing check (none for a
    stub, which passes nothing), then a failing check per (title, mistake key)."""
    results = [] if stub else [Check("passes", True, 1.0)]
    results += [Check(title, False, 1.0, f"{title}: wrong", mistake=key, **facts) for title, key in failures]
    return scored(exercise_id, results)


def learner(name: str, *exercises: dict, notes=(), seconds: float | None = None) -> Learner:
    """A learner whose report is valid under the grader's schema."""
    report = {"version": 2, "score": sum(e["score"] for e in exercises),
              "max_score": sum(e["max_score"] for e in exercises), "exercises": list(exercises),
              "notes": list(notes), "files": {f"{name}.py": {"sections": [], "adapted_by": []}}}
    assert schema_errors(report) == []
    return Learner(name, report["score"], report["max_score"], report["exercises"], seconds, notes=report["notes"])


def test_misconceptions_are_grouped_across_exercises_and_each_is_counted():
    """One row per mistake key over every exercise (its learners counted once), a learner whose only
    mistake is half-precision angles among them; not-attempted exercises count no mistake."""
    half = exercise("rope.apply_rope", ("keeps bfloat16", "half-precision"))
    report = analyse([
        learner("pat", half),
        learner("quinn", exercise("rope.apply_rope", ("rotates", "pairing-convention"), ("bf16", "half-precision")),
                exercise("rope.cached_rope_attention", ("decodes", "pairing-convention"))),
        learner("rae", exercise("scaling.yarn_inv_freq", ("keeps fp16", "half-precision"))),
        learner("sol", exercise("rope.apply_rope", ("rotates", "pairing-convention"), stub=True,
                                raised="NotImplementedError")),
    ], "batch")
    rows = {m["key"]: m for m in report["misconceptions"]}
    assert [m["key"] for m in report["misconceptions"]] == ["half-precision", "pairing-convention"]
    assert rows["half-precision"]["students"] == ["pat", "quinn", "rae"] and rows["half-precision"]["learners"] == 3
    assert {e["id"]: e["students"] for e in rows["half-precision"]["exercises"]} == {
        "rope.apply_rope": ["pat", "quinn"], "scaling.yarn_inv_freq": ["rae"]}
    assert rows["half-precision"]["label"] == MISTAKES["half-precision"].label
    # (one section to reread for both: the mistake's own, not each exercise's)
    assert rows["half-precision"]["where"] == [MISTAKES["half-precision"].reread] != [where_to_look("rope.apply_rope")]
    assert rows["pairing-convention"]["students"] == ["quinn"]  # sol's stub: not attempted
    assert [e["id"] for e in rows["pairing-convention"]["exercises"]] == ["rope.apply_rope",
                                                                          "rope.cached_rope_attention"]
    assert {(c["exercise"], c["title"]): c["students"] for c in report["checks"]}[("rope.apply_rope", "rotates")] == \
        ["quinn"]
    page = render_html(report)
    assert MISTAKES["half-precision"].label in page and "rope.apply_rope (2), scaling.yarn_inv_freq (1)" in page


KEYS = sorted(MISTAKES, key=lambda k: -len(MISTAKES[k].label))[:12]  # the longest labels


def crowded_class() -> list[Learner]:
    """12 learners: the i-th has the first 12 - i of KEYS (each mistake a different count), and a
    cell that raised."""
    return [learner(f"learner{i:02d}", exercise("rope.apply_rope", *((f"check {k}", k) for k in KEYS[:12 - i])),
                    notes=[note("cell_raised", "ValueError: " + "x" * 300, f"learner{i:02d}.ipynb", "3")],
                    seconds=1.0 + i)
            for i in range(12)]


def test_the_first_screen_shows_the_ten_most_common_misconceptions():
    keys = KEYS
    report = analyse(crowded_class(), "batch")
    assert [m["learners"] for m in report["misconceptions"]] == list(range(12, 0, -1))
    page = render_html(report)
    first_screen = page.split("<details>", 1)[0]
    assert [k for k in keys if html.escape(MISTAKES[k].label) in first_screen] == keys[:10]
    assert "... and 2 more below" in first_screen
    assert all(html.escape(MISTAKES[k].label) in page for k in keys)  # every one in "Every misconception"


def test_problems_come_from_typed_notes_statuses_and_halted_checks():
    unparsed = not_graded("rope.apply_rope", "not_parsed", "`apply_rope` is in a.py, which does not parse")
    hung = exercise("rope.rope_matrix", ("is orthogonal", None), halted="hung")
    x = learner("x", unparsed, hung, notes=[
        note("cell_hung", "did not finish within 3 s", "b.ipynb", "4"),
        note("cell_raised", "ValueError: boom", "b.ipynb", "5"),
        note("cell_crashed", "the Python process running your code ended", "b.ipynb", "7"),
        note("module_missing", "ModuleNotFoundError: No module named 'mine'", "c.py", "module", module="mine"),
        note("unreadable", "does not parse: SyntaxError: invalid syntax (line 3)", "a.py"),
        note("not_a_submission", "cannot be graded: not a readable notebook", "d.ipynb"),
        note("routing", "c.py also define(s) rope names, but rope is graded on b.ipynb (its own file) only", "b.ipynb"),
        note("convention", "rope graded through the Hugging Face convention", "b.ipynb")])
    report = analyse([x, learner("y")], "batch")
    assert [(p["kind"], p["where"]) for p in report["problems"] if p["student"] == "x"] == [
        ("hung", "b.ipynb: cell 4"), ("raised", "b.ipynb: cell 5"), ("crashed", "b.ipynb: cell 7"),
        ("raised", "c.py: your module"), ("unreadable", "a.py"), ("error", "d.ipynb"), ("hung", "rope.rope_matrix")]
    assert [(p["kind"], p["where"]) for p in report["problems"] if p["student"] == "y"] == [("empty", "submission")]
    row = {r["id"]: r for r in report["exercises"]}["rope.apply_rope"]
    assert (row["not_parsed"], row["learners"], row["scores"][0]["status"]) == (1, 1, "not_parsed")


def test_gradescope_runs_that_graded_nothing_say_why(tmp_path):
    """Gradescope's results.json when the time limit came first, the autograder failed, or nothing
    was submitted: every exercise listed as not graded (left out), the learner shown as hung, in
    error, or empty; a results.json the course did not write (run_autograder's own) as an error."""
    runs = {"stopped": {"stopped": "Grading stopped after 12 s, the autograder's time limit"},
            "failed": {"failure": "RuntimeError: boom"}, "blank": {}}
    for name, how in runs.items():
        run = Run(tmp_path / "ag", Config(sections=["rope"]))
        run.files = [] if name == "blank" else ["rope.py"]
        (tmp_path / "class" / name).mkdir(parents=True)
        document = run.results(**how)
        assert {t["extra_data"]["exercise"]["status"] for t in document["tests"] if "max_score" in t} == {"not_graded"}
        (tmp_path / "class" / name / "results.json").write_text(json.dumps(document))
    (tmp_path / "class" / "shell").mkdir()
    (tmp_path / "class" / "shell" / "results.json").write_text(json.dumps(
        {"score": 0.0, "output": "run_autograder: exit status 3; wrote a results.json with score 0", "tests": []}))
    report = analyse(*read_class(tmp_path / "class"))
    assert {(p["student"], p["kind"], p["where"]) for p in report["problems"]} == {
        ("stopped", "hung", "submission"), ("failed", "error", "submission"), ("blank", "empty", "submission"),
        ("shell", "error", "submission")}
    assert report["exercises"] == [] and report["summary"]["graded"] == 0


def test_report_of_nothing_says_so(tmp_path):
    with pytest.raises(ValueError, match="neither"):
        write_class_report(tmp_path)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ["COURSE_SCREENSHOTS"]) if os.environ.get("COURSE_SCREENSHOTS") \
        else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_page_opens_in_chromium_without_errors(graded, screenshots, tmp_path):
    """The graded class's page, and a crowded one (the top ten misconceptions, the longest labels,
    more checks and problems than shown): what to re-teach fits in the first screen."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: bin/setup dev")
    out, _ = graded
    crowded = tmp_path / "crowded.html"
    crowded.write_text(render_html(analyse(crowded_class(), "batch", "crowded")))
    seen = {}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            for name, html_path in (("class-report", out / "report.html"), ("class-report-crowded", crowded)):
                page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
                messages, errors, requests = [], [], []
                page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", lambda r: requests.append(r.url))
                page.goto(html_path.as_uri(), wait_until="load")
                images = page.evaluate("() => [...document.images].map(i => [i.naturalWidth, "
                                       "i.getBoundingClientRect().bottom])")
                # what to re-teach fits in the first screen: the three tables end above the fold
                bottoms = page.evaluate("() => [...document.querySelectorAll('.grid table')]"
                                        ".map(t => t.getBoundingClientRect().bottom)")
                rows = page.evaluate("() => document.querySelectorAll('.grid table')[0].rows.length")
                seen[name] = (messages, errors, requests, images, bottoms, rows, page.inner_text("body"))
                page.screenshot(path=str(screenshots / f"{name}.png"))
                page.close()
        finally:
            browser.close()
    print(f"class report screenshots: {screenshots}")
    for name, (messages, errors, requests, images, bottoms, rows, text) in seen.items():
        assert errors == [] and [m for m in messages if m.startswith("error")] == [], (name, errors, messages)
        assert [u for u in requests if not u.startswith(("file:", "data:"))] == [], name
        assert len(images) == 2 and all(w > 0 for w, _ in images), (name, images)
        assert len(bottoms) == 3 and max(bottoms) <= 900, (name, bottoms)
    text = seen["class-report"][-1]
    assert MISTAKES["wrong-dtype"].label in text and SCRIPT in text and "max.py" in text
    assert seen["class-report-crowded"][5] == 1 + 10  # a header and the top ten
