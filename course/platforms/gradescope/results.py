"""results.json, Gradescope's output format (shared with course.batch), and its schema."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from course.grading.report import REPORT_VERSION, feedback_text, rendered_notes


SCHEMA = Path(__file__).with_name("results.schema.json")


def _sections_by_file(report: dict) -> dict:
    """The report's files (path relative to the submission -> {sections, ...}); a batch record keeps
    them as file_sections, its files being the learner's file names."""
    files = report.get("file_sections", report.get("files"))
    return files if isinstance(files, dict) else {}


def report_data(report: dict | None) -> dict:
    """The grader's report without its exercises (each test carries its own): results.json's
    extra_data["report"], which the class report reads (course.platforms.class_report.reading).
    None: grading gave no report (stopped by the time limit, nothing submitted)."""
    if report is None:
        return {"version": REPORT_VERSION, "notes": [], "files": {}}
    data = {"version": report.get("version"), "notes": report.get("notes", []), "files": _sections_by_file(report)}
    return {**data, "error": report["error"]} if report.get("error") else data


def report_lines(report: dict) -> list[str]:
    """What a grader report says about the whole submission: why it could not be graded, its notes
    (course.grading.report.rendered_notes), which file graded which section."""
    lines = []
    if report.get("error"):
        lines.append(f"Could not grade this submission: {report['error']}")
    lines += [f"note: {n}" for n in rendered_notes(report)]
    # A section none of whose names is defined is listed as not found, not as graded on a file.
    found = {e["id"].split(".")[0] for e in report.get("exercises", []) if e.get("status") != "not_defined"}
    for path, entry in _sections_by_file(report).items():
        sections = [s for s in entry.get("sections", []) if s in found]
        if sections:
            lines.append(f"{path} graded for {', '.join(sections)}")
    return lines


def exercise_test(exercise: dict, number: str, *, name: str | None = None, visibility: str = "visible") -> dict:
    """One Gradescope test from one exercise of a grader report: its output the feedback (the
    recognised mistakes first, with where to reread), the exercise itself as data in extra_data."""
    return {"name": name or exercise["id"], "number": number, "score": exercise["score"],
            "max_score": exercise["max_score"],
            "status": "passed" if exercise["score"] >= exercise["max_score"] else "failed",
            "output": feedback_text(exercise), "visibility": visibility, "extra_data": {"exercise": exercise}}


def results_document(score: float, seconds: float, output: str, tests: list[dict], **more) -> dict:
    """A results.json document (Gradescope's output format)."""
    return {"score": float(score), "execution_time": max(0, round(seconds)), "output": output,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests, **more}


def _jsonschema():
    """jsonschema, imported without the optional RFC 3987 grammar it would build for the "iri"
    format (1.4 s of CPU, longer under load: the autograder's time-limit path must write at once;
    the schema checks no format)."""
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # an import of it now raises ImportError, which jsonschema expects
        try:
            import jsonschema  # noqa: F401
        finally:
            del sys.modules["rfc3987_syntax"]
    import jsonschema

    return jsonschema


def schema_errors(document: dict) -> list[str]:
    """Where `document` breaks gradescope_results.schema.json (empty: valid)."""
    jsonschema = _jsonschema()
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(document)]
