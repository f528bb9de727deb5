"""What to re-teach: ``python -m course.report OUT_DIR [--html report.html] [--json report.json]``.

Reads a graded class, either a batch's ``OUT_DIR/students/*.json`` (course.batch; also what its
nbgrader path writes) or a folder of Gradescope ``results.json`` files (``gradescope/<id>/results.json``
or any ``**/results.json``), and writes one self-contained page (figures as PNG data URIs, no
script, no network: a Content-Security-Policy forbids both) and the same data as JSON:

- the score distribution of each exercise (a strip plot: one dot per learner);
- the checks failed most often, by exercise: the ``- <title>: <message>`` lines of the feedback,
  counted once per learner (failures hidden behind ``... and N more`` are not seen; checks that
  only met a ``NotImplementedError`` stub count as not attempted, not as failed);
- each named misconception, how many learners have it, in which exercise, and the notebook section
  to reread (course.exercises.where_to_look). A failure line is read in three steps: the grader's
  ``Your output matches X.`` / ``Your value matches X.`` sentences, X looked up in MISCONCEPTIONS (a
  table keyed by a stable phrase of X, so that the several wordings of one mistake count as one);
  an X no phrase knows is kept as it is (key ``raw:X``). Then hints that name a mistake without
  "matches" (HINTS) and mistakes of form rather than idea (GENERIC: dtype, in place, argument
  checks, device);
- learners whose submission could not be graded, hung, crashed or raised, or holds a module that
  does not parse ("unreadable": its sections are graded 0, not left out) (the report's ``error``
  and ``notes``, feedback lines that ran out of time), or defined nothing of the course;
- time per learner: a batch's ``seconds``, Gradescope's ``execution_time``; ``n/a`` when absent.

Every learner-provided text (names, feedback, notes) is HTML-escaped.
"""
from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from course.exercises import EXERCISES, where_to_look
from course.files import write_atomic
from course.platforms.class_report.misconceptions import (CELL_NOTE, CRASHED, HUNG, NOT_ATTEMPTED, UNPARSED,
                                                          misconceptions_in, parse_feedback)
from course.platforms.class_report.page import render_html
from course.platforms.class_report.reading import Learner, read_class


REPORT_VERSION = 1
HTML_NAME, JSON_NAME = "report.html", "report.json"



# -- the analysis -------------------------------------------------------------------------------

def _problems(learner: Learner) -> list[dict]:
    found = []

    def add(kind, where, detail):
        found.append({"student": learner.id, "kind": kind, "where": where, "detail": detail[:400]})

    if learner.error:
        add("hung" if HUNG.search(learner.error) else "error", "submission", learner.error)
    for note in learner.notes:  # cells that raised or hung; other notes (routing, adapters) are information
        cell = CELL_NOTE.match(note)
        if "your code could not be run" in note or ": cannot be graded: " in note:
            add("error", "submission", note)
        elif note.startswith("Grading stopped after"):
            add("hung", "submission", note)
        elif cell:
            where = f"{cell['file']}: {cell['where']}" if cell["file"] else cell["where"]
            detail = cell["detail"]
            unparsed = cell["where"] == "your module" and UNPARSED.match(detail)
            add("hung" if HUNG.search(detail) else "crashed" if CRASHED.search(detail)
                else "unreadable" if unparsed else "raised", where, detail)
    for exercise in learner.exercises:
        fb = parse_feedback(exercise["feedback"])
        for kind, pattern in (("hung", HUNG), ("crashed", CRASHED)):
            hit = next((m for _, m in fb.failures if pattern.search(m)), None)
            if hit is not None:
                add(kind, exercise["id"], hit.splitlines()[0])
    if not learner.error and not learner.exercises:
        add("empty", "submission", "defines none of the course's functions: nothing was graded")
    return found


def analyse(learners: list[Learner], source: str, folder: str = "") -> dict:
    learners = sorted(learners, key=lambda l: l.id)
    exercise_ids = [i for i in EXERCISES if any(e["id"] == i for l in learners for e in l.exercises)]
    per_exercise = {i: {"id": i, "where": where_to_look(i), "max_score": float(EXERCISES[i].points),
                        "scores": [], "missing": 0, "not_attempted": 0, "failed_checks": 0} for i in exercise_ids}
    checks: dict[tuple[str, str], set] = {}
    mistakes: dict[tuple[str, str], dict] = {}
    for learner in learners:
        for exercise in learner.exercises:
            row = per_exercise[exercise["id"]]
            fb = parse_feedback(exercise["feedback"])
            attempted = [(t, m) for t, m in fb.failures if not NOT_ATTEMPTED.search(m)]
            stub = bool(fb.failures) and not attempted
            row["scores"].append({"student": learner.id, "score": exercise["score"],
                                  "max_score": exercise["max_score"], "missing": fb.not_defined, "stub": stub})
            row["missing"] += fb.not_defined
            if stub:
                row["not_attempted"] += 1
                continue
            row["failed_checks"] += fb.failed
            for title, message in attempted:
                checks.setdefault((exercise["id"], title), set()).add(learner.id)
                for key, label, text in misconceptions_in(message):
                    entry = mistakes.setdefault((key, exercise["id"]), {
                        "key": key, "label": label, "exercise": exercise["id"],
                        "where": where_to_look(exercise["id"]), "students": set(), "example": text.strip()[:300]})
                    entry["students"].add(learner.id)
    exercises = []
    for row in per_exercise.values():
        fractions = [s["score"] / s["max_score"] for s in row["scores"] if s["max_score"]]
        row.update(learners=len(row["scores"]), mean=round(statistics.fmean(fractions), 4) if fractions else None,
                   full_marks=sum(f >= 1 for f in fractions), zero=sum(f == 0 for f in fractions))
        exercises.append(row)
    check_rows = sorted(({"exercise": e, "title": t, "learners": len(s), "students": sorted(s)}
                         for (e, t), s in checks.items()),
                        key=lambda r: (-r["learners"], list(EXERCISES).index(r["exercise"]), r["title"]))
    mistake_rows = sorted(({**m, "learners": len(m["students"]), "students": sorted(m["students"])}
                           for m in mistakes.values()),
                          key=lambda r: (-r["learners"], list(EXERCISES).index(r["exercise"]), r["key"]))
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
        "exercises": exercises, "checks": check_rows, "misconceptions": mistake_rows,
        "problems": problems, "times": times,
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
        print(f"  {m['learners']:3d}  {m['label']}  [{m['exercise']}: {m['where']}]")
    print(f"wrote {html_path} and {json_path}")
    return 0
