"""results.json, Gradescope's output format (shared with course.batch), and its schema."""
from __future__ import annotations

import json
import sys
from pathlib import Path



SCHEMA = Path(__file__).with_name("results.schema.json")


def report_lines(report: dict) -> list[str]:
    """What a grader report says about the whole submission: why it could not be graded, the
    cells that raised, which file graded which section (a batch record has them as file_sections)."""
    lines = []
    if report.get("error"):
        lines.append(f"Could not grade this submission: {report['error']}")
    lines += [f"note: {n}" for n in report.get("notes", [])]
    entries = report.get("file_sections") or [f for f in report.get("files", []) if isinstance(f, dict)]
    for entry in entries:
        if entry["sections"]:
            lines.append(f"{entry['file']} graded for {', '.join(entry['sections'])}")
    return lines


def exercise_test(exercise: dict, number: str, *, name: str | None = None, visibility: str = "visible") -> dict:
    """One Gradescope test from one exercise of a grader report."""
    return {"name": name or exercise["id"], "number": number, "score": exercise["score"],
            "max_score": exercise["max_score"],
            "status": "passed" if exercise["score"] >= exercise["max_score"] else "failed",
            "output": exercise["feedback"], "visibility": visibility}


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
