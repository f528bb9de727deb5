"""What to re-teach: ``python -m course.report OUT_DIR [--html report.html] [--json report.json]``.

Reads a graded class, either a batch's ``OUT_DIR/students/*.json`` (course.batch; also what its
nbgrader path writes) or a folder of Gradescope ``results.json`` files (``gradescope/<id>/results.json``
or any ``**/results.json``), and writes one self-contained page (figures as PNG data URIs, no
script, no network: a Content-Security-Policy forbids both) and the same data as JSON. Everything
comes from the grader's report as data (course/grading/report.schema.json), never from its text:

- the score distribution of each exercise (a strip plot: one dot per learner), and per exercise
  how many learners did not define it (status ``not_defined``), left it a stub (``not_attempted``)
  or hold it in a module that does not parse (``not_parsed``);
- the checks failed most often: each failed check of a graded exercise, by exercise and title,
  counted once per learner (a check that only met a ``NotImplementedError`` stub is not counted);
- the misconceptions: one row per recognised mistake (its stable key, course/grading/mistakes.py),
  grouped across exercises: its label, the exercises it was seen in with the section to reread
  for each, and the learners who have it;
- learners whose submission could not be graded, hung, crashed or raised, or holds a module that
  does not parse (the report's ``error``, its typed notes, checks that ``halted``), or defined
  nothing of the course;
- time per learner: a batch's ``seconds``, Gradescope's ``execution_time``; ``n/a`` when absent.

Every learner-provided text (names, messages, notes) is HTML-escaped.
"""
from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from course.exercises import EXERCISES, where_to_look
from course.files import write_atomic
from course.platforms.class_report.page import render_html
from course.platforms.class_report.reading import Learner, read_class


REPORT_VERSION = 2  # 2: misconceptions grouped across exercises, read from the report's data
HTML_NAME, JSON_NAME = "report.html", "report.json"
ORDER = list(EXERCISES)

# What a note of the grader's report is to the class report (the other kinds are information:
# routing, adapters, conventions, where a name comes from).
PROBLEM_NOTES = {"cell_raised": "raised", "module_missing": "raised", "truncated": "raised", "cell_hung": "hung",
                 "cell_crashed": "crashed", "unreadable": "unreadable", "not_a_submission": "error",
                 "not_run": "error"}
# statuses counted per exercise, besides the scores
UNGRADED = ("not_defined", "not_attempted", "not_parsed")


# -- the analysis -------------------------------------------------------------------------------

def _where(note: dict) -> str:
    """Where a note is: its file and cell ('submission' when neither)."""
    cell = note.get("cell")
    cell = "your module" if cell == "module" else f"cell {cell}" if cell else ""
    return ": ".join(filter(None, [note.get("file") or "", cell])) or "submission"


def _problems(learner: Learner) -> list[dict]:
    found = []

    def add(kind, where, detail):
        found.append({"student": learner.id, "kind": kind, "where": where, "detail": str(detail)[:400]})

    if learner.error:
        add("error", "submission", learner.error)
    if learner.stopped:
        add("hung", "submission", learner.stopped)
    for note in learner.notes:
        kind = PROBLEM_NOTES.get(note["kind"])
        if kind:
            add(kind, _where(note), note.get("detail", ""))
    for exercise in learner.exercises:
        for halted in ("hung", "crashed"):
            check = next((c for c in exercise["checks"] if c.get("halted") == halted), None)
            if check is not None:
                add(halted, exercise["id"], (check.get("message") or "").split("\n", 1)[0])
    if not learner.error and not learner.stopped and not learner.exercises:
        add("empty", "submission", "defines none of the course's functions: nothing was graded")
    return found


def _exercise_rows(learners: list[Learner]) -> list[dict]:
    rows: dict[str, dict] = {}
    for learner in learners:
        for exercise in learner.exercises:
            row = rows.setdefault(exercise["id"], {
                "id": exercise["id"], "where": where_to_look(exercise["id"]),
                "max_score": float(EXERCISES[exercise["id"]].points), "scores": [], **{s: 0 for s in UNGRADED}})
            row["scores"].append({"student": learner.id, "score": exercise["score"],
                                  "max_score": exercise["max_score"], "status": exercise["status"]})
            if exercise["status"] in UNGRADED:
                row[exercise["status"]] += 1
    for row in rows.values():
        fractions = [s["score"] / s["max_score"] for s in row["scores"] if s["max_score"]]
        row.update(learners=len(row["scores"]), mean=round(statistics.fmean(fractions), 4) if fractions else None,
                   full_marks=sum(f >= 1 for f in fractions), zero=sum(f == 0 for f in fractions))
    return sorted(rows.values(), key=lambda r: ORDER.index(r["id"]))


def _graded(learners: list[Learner]):
    """(learner, exercise) for every exercise whose checks ran on the learner's own code."""
    return ((learner, e) for learner in learners for e in learner.exercises if e["status"] == "graded")


def _check_rows(learners: list[Learner]) -> list[dict]:
    checks: dict[tuple[str, str], set] = {}
    for learner, exercise in _graded(learners):
        for check in exercise["checks"]:
            if check["outcome"] == "failed" and check.get("raised") != "NotImplementedError":
                checks.setdefault((exercise["id"], check["title"]), set()).add(learner.id)
    return sorted(({"exercise": e, "title": t, "learners": len(s), "students": sorted(s)}
                   for (e, t), s in checks.items()),
                  key=lambda r: (-r["learners"], ORDER.index(r["exercise"]), r["title"]))


def _misconception_rows(learners: list[Learner]) -> list[dict]:
    """One row per mistake key, across exercises: its exercises (each with where to reread and
    its learners) and every learner who has it in any of them."""
    rows: dict[str, dict] = {}
    for learner, exercise in _graded(learners):
        for mistake in exercise["mistakes"]:
            row = rows.setdefault(mistake["key"], {"key": mistake["key"], "label": mistake["label"], "students": set(),
                                                   "exercises": {}})
            row["students"].add(learner.id)
            seen = row["exercises"].setdefault(exercise["id"], {"id": exercise["id"], "where": mistake["where"],
                                                                "students": set()})
            seen["students"].add(learner.id)
    out = []
    for row in rows.values():
        exercises = [{**e, "learners": len(e["students"]), "students": sorted(e["students"])}
                     for e in sorted(row["exercises"].values(), key=lambda e: ORDER.index(e["id"]))]
        out.append({**row, "learners": len(row["students"]), "students": sorted(row["students"]),
                    "exercises": exercises, "where": list(dict.fromkeys(e["where"] for e in exercises))})
    return sorted(out, key=lambda r: (-r["learners"], ORDER.index(r["exercises"][0]["id"]), r["key"]))


def analyse(learners: list[Learner], source: str, folder: str = "") -> dict:
    learners = sorted(learners, key=lambda l: l.id)
    problems = [p for learner in learners for p in _problems(learner)]
    times = [{"student": l.id, "seconds": l.seconds} for l in learners]
    known = [t["seconds"] for t in times if t["seconds"] is not None]
    totals = [l.score / l.max_score for l in learners if l.max_score]
    return {
        "version": REPORT_VERSION, "source": source, "folder": folder,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": {"learners": len(learners), "graded": sum(l.status == "graded" and bool(l.exercises) for l in learners),
                    "with_problems": len({p["student"] for p in problems}),
                    "mean_fraction": round(statistics.fmean(totals), 4) if totals else None,
                    "median_seconds": round(statistics.median(known), 2) if known else None,
                    "max_seconds": round(max(known), 2) if known else None},
        "learners": [{"student": l.id, "score": l.score, "max_score": l.max_score, "status": l.status,
                      "seconds": l.seconds, "exercises": {e["id"]: e["score"] for e in l.exercises}}
                     for l in learners],
        "exercises": _exercise_rows(learners), "checks": _check_rows(learners),
        "misconceptions": _misconception_rows(learners), "problems": problems, "times": times,
    }


def write_class_report(folder, html_path=None, json_path=None, exclude=()) -> tuple[Path, Path]:
    """Read the class in `folder`, write the page and the JSON (default: report.html and report.json
    in `folder`); learners in `exclude` are left out (a batch's stale results)."""
    folder = Path(folder)
    learners, source = read_class(folder)
    learners = [l for l in learners if l.id not in set(exclude)]
    report = analyse(learners, source, str(folder.resolve()))
    html_path = Path(html_path) if html_path else folder / HTML_NAME
    json_path = Path(json_path) if json_path else folder / JSON_NAME
    write_atomic(json_path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    write_atomic(html_path, render_html(report))
    return html_path, json_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a batch's OUT_DIR (students/*.json) or a folder of Gradescope results.json files")
    parser.add_argument("--html", help=f"the page to write (default FOLDER/{HTML_NAME})")
    parser.add_argument("--json", help=f"the data to write (default FOLDER/{JSON_NAME})")
    args = parser.parse_args(argv)
    try:
        html_path, json_path = write_class_report(args.folder, args.html, args.json)
    except ValueError as err:
        parser.error(str(err))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    s = report["summary"]
    print(f"{s['learners']} learners ({report['source']}): {len(report['misconceptions'])} misconceptions, "
          f"{len(report['checks'])} failed checks, {s['with_problems']} learners with problems")
    for m in report["misconceptions"][:5]:
        print(f"  {m['learners']:3d}  {m['label']}  [{', '.join(e['id'] for e in m['exercises'])}]")
    print(f"wrote {html_path} and {json_path}")
    return 0
