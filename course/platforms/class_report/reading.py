"""Reading a graded class: a batch's students/*.json or a folder of Gradescope results.json files.

Both hold the grader's report as data (course/grading/report.schema.json): a batch record is the
report with the batch's fields beside it; a results.json written by course.platforms.gradescope
carries each exercise in its test's ``extra_data`` and the rest of the report (notes, error, files)
in its own ``extra_data``. Nothing is read back from the text a learner reads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from course.exercises import EXERCISES
from course.grading.report import REPORT_VERSION


@dataclass
class Learner:
    id: str
    score: float
    max_score: float
    exercises: list[dict]          # the report's exercises (course.grading.scoring): status, checks, mistakes
    seconds: float | None = None
    status: str = "graded"
    error: str = ""                # why nothing was graded
    notes: list[dict] = field(default_factory=list)  # typed notes (course.grading.report.note)
    stopped: str = ""              # the platform stopped grading (Gradescope's time limit)
    source: str = ""               # the file it was read from


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _exercises(entries) -> list[dict]:
    """The exercises of a report that the grader reached (Gradescope also lists those it did not)."""
    return [e for e in entries if isinstance(e, dict) and e.get("id") in EXERCISES
            and e.get("status") not in (None, "not_graded")]


def _notes(entries) -> list[dict]:
    return [n for n in entries if isinstance(n, dict) and isinstance(n.get("kind"), str)] \
        if isinstance(entries, list) else []


def _old(learner_id: str, version, path: Path) -> Learner:
    """A result written by another version of the grader: shown as such, not guessed at."""
    return Learner(learner_id, 0.0, 0.0, [], None, "error",
                   f"{path.name} holds a grade of report version {version!r}, not {REPORT_VERSION}: grade the class "
                   "again with this version of the course", source=str(path))


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
        learner_id = str(r.get("student", path.stem))
        if r.get("version") != REPORT_VERSION:
            learners.append(_old(learner_id, r.get("version"), path))
            continue
        learners.append(Learner(learner_id, _number(r.get("score")) or 0.0, _number(r.get("max_score")) or 0.0,
                                _exercises(r.get("exercises", [])), _number(r.get("seconds")),
                                str(r.get("status", "graded")), str(r.get("error") or ""),
                                _notes(r.get("notes")), source=str(path)))
    return learners


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
        extra = doc.get("extra_data") if isinstance(doc.get("extra_data"), dict) else {}
        report = extra.get("report")
        seconds = _number(doc.get("execution_time"))
        if not isinstance(report, dict):  # run_autograder's own results.json (the grader never wrote one)
            learners.append(Learner(learner_id, 0.0, 0.0, [], seconds, "error",
                                    str(doc.get("output") or "no grade from the course's grader")[:400],
                                    source=str(path)))
            continue
        if report.get("version") != REPORT_VERSION:
            learners.append(_old(learner_id, report.get("version"), path))
            continue
        tests = [t for t in doc.get("tests", []) if isinstance(t, dict)]
        exercises = _exercises(t["extra_data"].get("exercise") for t in tests if isinstance(t.get("extra_data"), dict))
        error = str(report.get("error") or extra.get("failure") or "")
        learners.append(Learner(learner_id, _number(doc.get("score")) or 0.0,
                                float(sum(e["max_score"] for e in exercises)), exercises, seconds,
                                "error" if error else "graded", error, _notes(report.get("notes")),
                                str(extra.get("stopped") or ""), str(path)))
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
