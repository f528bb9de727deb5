"""Reading a graded class: a batch's students/*.json or a folder of Gradescope results.json files."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from course.exercises import EXERCISES
from course.platforms.class_report.misconceptions import parse_feedback


# -- reading a class ----------------------------------------------------------------------------

@dataclass
class Learner:
    id: str
    score: float
    max_score: float
    exercises: list[dict]          # {"id", "score", "max_score", "feedback"}
    seconds: float | None = None
    status: str = "graded"
    error: str = ""
    notes: list[str] = field(default_factory=list)
    source: str = ""               # the file it was read from


def read_batch(folder: Path) -> list[Learner]:
    learners = []
    for path in sorted((folder / "students").glob("*.json")):
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            learners.append(Learner(path.stem, 0.0, 0.0, [], None, "error", f"unreadable result file {path.name}",
                                    source=str(path)))
            continue
        if not isinstance(r, dict):
            continue
        exercises = [e for e in r.get("exercises", []) if isinstance(e, dict) and e.get("id") in EXERCISES]
        seconds = r.get("seconds")
        learners.append(Learner(str(r.get("student", path.stem)), float(r.get("score") or 0.0),
                                float(r.get("max_score") or 0.0), exercises,
                                float(seconds) if isinstance(seconds, (int, float)) else None,
                                str(r.get("status", "graded")), str(r.get("error") or ""),
                                [str(n) for n in r.get("notes", [])], str(path)))
    return learners


GS_ERRORS = (re.compile(r"^Could not grade this submission: (.*)"),
             re.compile(r"^The autograder could not grade this submission: (.*)"),
             re.compile(r"^(The autograder failed while grading .*)"),
             re.compile(r"^(No notebook \(\.ipynb\) or Python module \(\.py\) was found.*)"))
GS_STOPPED = re.compile(r"^(Grading stopped after .*)")


def read_gradescope(folder: Path) -> list[Learner]:
    paths = sorted(folder.glob("gradescope/*/results.json")) or sorted(folder.rglob("results.json"))
    learners = []
    for path in paths:
        relative = path.parent.relative_to(folder).as_posix()
        if relative.startswith("gradescope/"):
            relative = relative[len("gradescope/"):]
        learner_id = relative if relative not in ("", ".") else folder.name
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            learners.append(Learner(learner_id, 0.0, 0.0, [], None, "error", "unreadable results.json",
                                    source=str(path)))
            continue
        if not isinstance(doc, dict):
            continue
        exercises = []
        for test in doc.get("tests", []):
            name = str(test.get("name", ""))
            exercise_id = name.split(" ", 1)[0]
            if exercise_id not in EXERCISES or "max_score" not in test:
                continue  # the visible checks and other tests that are not an exercise
            exercises.append({"id": exercise_id, "score": float(test.get("score") or 0.0),
                              "max_score": float(test["max_score"]), "feedback": str(test.get("output", ""))})
        error, notes = "", []
        for line in str(doc.get("output", "")).splitlines():
            for pattern in GS_ERRORS:
                m = pattern.match(line)
                if m and not error:
                    error = m.group(1)
            if line.startswith("note: "):
                notes.append(line[len("note: "):])
            m = GS_STOPPED.match(line)
            if m:
                notes.append(m.group(1))
        # exercises the autograder lists but never graded (nothing submitted for them) are left out
        graded = [e for e in exercises if not parse_feedback(e["feedback"]).not_graded]
        seconds = doc.get("execution_time")
        learners.append(Learner(learner_id, float(doc.get("score") or 0.0),
                                float(sum(e["max_score"] for e in graded)), graded,
                                float(seconds) if isinstance(seconds, (int, float)) else None,
                                "error" if error else "graded", error, notes, str(path)))
    return learners


def read_class(folder) -> tuple[list[Learner], str]:
    """(learners, source): 'batch' when the folder has students/*.json, else 'gradescope'."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if any((folder / "students").glob("*.json")):
        return read_batch(folder), "batch"
    learners = read_gradescope(folder)
    if not learners:
        raise ValueError(f"{folder} holds neither students/*.json (python -m course.batch) nor results.json files "
                         "(Gradescope)")
    return learners, "gradescope"
