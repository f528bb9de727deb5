"""The grading report: its notes as data, its schema, and the text every page renders from it.

A report is a dict (JSON) described by ``report.schema.json`` beside this file: per exercise its
checks, outcomes and recognised mistakes (course.grading.scoring), typed notes, and the files
graded. Text is made here and only here, from that data, for the pages that show text: the
command line, an exercise's ``feedback``, Gradescope's output, nbgrader's feedback.
"""
from __future__ import annotations

import functools
import json
import os
import textwrap
from pathlib import Path

from course.exercises import ROBUSTNESS_SHARE, where_to_look

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
REPORT_VERSION = 2
CHECK_ENV = "COURSE_CHECK_REPORTS"  # set (the test suite does): every report is checked against the schema

# What a note is about. cell_*: a cell (or a module's whole code) that raised, hung or ended its
# process; module_missing: one that imported a module the submission does not have; unreadable:
# a module that does not parse; not_a_submission: a file that cannot be graded; not_run: a file
# whose process could not start; analysis: names read as the code ran, not from its text;
# adapter/convention: names graded through an adapter or a recognised convention; not_recognised:
# a section written to other signatures that no convention fits (its functions' signatures as
# data), or a submission of which nothing was graded or recognised; origin: a
# graded name that comes from an installed package; routing: a section defined in several files.
NOTE_KINDS = ("cell_raised", "cell_hung", "cell_crashed", "module_missing", "unreadable", "not_a_submission",
              "not_run", "analysis", "adapter", "convention", "not_recognised", "origin", "routing", "truncated")
ADAPTER_HINT = ('write an adapter that defines the course\'s names from yours and grade with --adapter FILE '
                '(--suggest-adapter prints a start; README, "Checking RoPE/ALiBi code from elsewhere")')
WHY_CHARS = 300  # of a reason a convention did not fit (it quotes what the learner's code raised)


def note(kind: str, detail: str, file: str | None = None, cell: str | None = None, **extra) -> dict:
    """One typed note; `file` is the path relative to the submission's root, `cell` a cell's label
    ("module" for a .py file's whole code)."""
    assert kind in NOTE_KINDS, kind
    return {"kind": kind, "file": file, "cell": cell, "detail": detail, **extra}


def signature_text(found: dict) -> str:
    """A learner name's signature as reported (course.grading.conventions.signatures.Signature.as_data)."""
    def listed(parameters):
        if parameters is None:
            return "(?)"
        marks = {"var_positional": "*", "var_keyword": "**"}
        return "(" + ", ".join(f"{marks.get(p['kind'], '')}{p['name']}{'=...' if p['default'] else ''}"
                               for p in parameters) + ")"
    if found["kind"] == "class":
        forward = f" with forward{listed(found.get('forward'))}" if found.get("forward") is not None else ""
        return f"class {found['name']}{listed(found['parameters'])}{forward}"
    return f"{found['name']}{listed(found['parameters'])}" if found["kind"] == "function" else found["name"]


def not_recognised_note(section: str | None, found: list[dict], tried: list[dict], file: str | None = None) -> dict:
    """A section (None: the whole submission) whose code is written to other signatures than any
    convention's: the functions found (data, as Signature.as_data) and why each convention that was
    tried did not fit; the detail renders them and points to --adapter."""
    tried = [{"convention": t["convention"], "why": t["why"][:WHY_CHARS]} for t in tried]
    what = (f"{section} was not recognised: your " + "; ".join(map(signature_text, found)) +
            (" fit" if len(found) > 1 else " fits") + " no convention the grader knows") if section and found else (
        "nothing was graded or recognised: the file defines none of the course's names (e.g. apply_rope, "
        "alibi_slopes) and none of the conventions the grader knows")
    why = "".join(f" ({t['convention']}: {t['why']})" for t in tried)
    return note("not_recognised", f"{what}{why}; {ADAPTER_HINT}", file, section=section, found=found, tried=tried)


def foreign_detail(name: str, found: dict) -> str:
    """Why a course name defined with another library's signature (that no convention fits) is not graded."""
    return (f"`{name}` is not graded: {signature_text(found)} cannot be called as the course's {name} (another "
            f"library's signature?) and fits no convention the grader knows; {ADAPTER_HINT}.")


def probe_detail(name: str, convention: str, why: str) -> str:
    """Why a contract name a convention would make of the learner's code is not graded: its probe
    call (a batch of 2 with 2 heads, course.adapting.probe) failed."""
    return (f"`{name}` is not graded: {convention} recognised your code's signatures, but the {name} it makes of "
            f"them failed a small call (batch 2, 2 heads): {why[:WHY_CHARS]}. If your code is right for another "
            f"layout or library, {ADAPTER_HINT}.")


NOTHING_RECOGNISED = ("nothing was graded: the submission defines none of the course's names and fits none of "
                      "the conventions the grader knows (see its notes); " + ADAPTER_HINT)


def failed_report(why: str) -> dict:
    """The report of a submission nothing of which could be graded."""
    return {"version": REPORT_VERSION, "score": 0.0, "max_score": 0.0, "exercises": [], "notes": [], "files": {},
            "error": why}


def note_text(entry: dict, single: bool = True) -> str:
    """A note as one line; the file is named when the report has several."""
    where = []
    if entry.get("file") and not single:
        where.append(entry["file"])
    if entry.get("cell"):
        where.append("your module" if entry["cell"] == "module" else f"cell {entry['cell']}")
    return ": ".join([*where, entry["detail"]])


def rendered_notes(report: dict) -> list[str]:
    single = len(report.get("files") or {}) <= 1
    return [note_text(n, single) for n in report.get("notes", [])]


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _not_run(checks: list[dict]) -> str:
    """'2 checks (reason); 1 check (other reason)' for the checks that did not run."""
    counts: dict[str, int] = {}
    for check in checks:
        if check["outcome"] == "not_run":
            counts[check["reason"]] = counts.get(check["reason"], 0) + 1
    return "; ".join(f"{_count(n, 'check')} ({why})" for why, n in counts.items())


def feedback_text(exercise: dict) -> str:
    """What a learner reads about one exercise: the recognised mistakes first, then every failing check,
    those of the mathematics (core) before those of robustness."""
    status, checks = exercise["status"], exercise["checks"]
    not_run = _not_run(checks)
    if status == "not_applicable":
        return f"Not applicable: {exercise['detail']}" + (f": {not_run}." if not_run else ".")
    if status in ("not_defined", "not_parsed", "not_graded", "no_checks"):
        return exercise["detail"]
    if status == "not_attempted":
        return (f"Not implemented yet: `{exercise['title']}` raises NotImplementedError. "
                f"Reread {where_to_look(exercise['id'])}.")
    ran = [c for c in checks if c["outcome"] != "not_run"]
    failed = [c for c in ran if c["outcome"] == "failed"]
    that_apply = " that apply" if not_run else ""
    lines = [f"Recognised mistake: {m['label']} (reread {m['where']})." for m in exercise["mistakes"]]
    if failed:
        lines.append(f"{len(failed)} of {len(ran)} checks{that_apply} fail:")
        lines += [f"- {c['title']}: {c['message']}" for c in failed if c["stage"] == "core"]
        robust = [c for c in failed if c["stage"] == "robustness"]
        if robust:
            share = (f", together {ROBUSTNESS_SHARE:.0%} of the points" if any(c["stage"] == "core" for c in ran)
                     else "")
            lines.append(f"Robustness (dtype, device, inputs left unchanged, bad arguments{share}):")
            lines += [f"- {c['title']}: {c['message']}" for c in robust]
    else:
        lines.append(f"All {len(ran)} checks{that_apply} pass.")
    if not_run:
        lines.append(f"Not run: {not_run}.")
    if failed:
        lines.append(f"Reread {where_to_look(exercise['id'])}.")
    return "\n".join(lines)


def wrapped(text: str, width: int = 100) -> str:
    """Text for a page that does not wrap lines (nbgrader's feedback, a terminal log)."""
    return "\n".join(textwrap.fill(line, width, subsequent_indent="    " if line.startswith("- ") else "",
                                   break_long_words=False, break_on_hyphens=False) or line
                     for line in text.splitlines())


def format_text(report: dict, label: str) -> str:
    """The command line's report."""
    lines = [f"Grading {label}"]
    if report.get("error"):
        return "\n".join(lines + [f"Cannot grade: {report['error']}"] + [f"note: {n}" for n in rendered_notes(report)])
    if not report["exercises"]:
        lines.append("No graded exercise found: define at least one function or class named in the course.")
    for ex in report["exercises"]:
        score = "n/a" if not ex["applicable"] else f"{ex['score']:g} / {ex['max_score']:g}"
        lines.append(f"{ex['id']:<40} {score:>5}")
        skipped = any(c["outcome"] == "not_run" for c in ex["checks"])
        if ex["score"] < ex["max_score"] or not ex["applicable"] or skipped:
            lines += ["    " + line for line in ex["feedback"].splitlines()]
    lines += [f"note: {n}" for n in rendered_notes(report)]
    files = report.get("files") or {}
    if len(files) > 1:
        for path, entry in files.items():
            lines.append(f"file {path}: " + (f"graded for {', '.join(entry['sections'])}" if entry["sections"]
                                             else "no graded section"))
    lines.append(f"Total: {report['score']:g} / {report['max_score']:g}")
    return "\n".join(lines)


@functools.cache
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(report: dict) -> list[str]:
    """Where `report` departs from the schema ([] if nowhere)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in _validator().iter_errors(report)]


def checked(report: dict) -> dict:
    """The report, checked against the schema when CHECK_ENV is set (a mismatch is the grader's bug)."""
    if os.environ.get(CHECK_ENV):
        errors = schema_errors(report)
        if errors:
            raise AssertionError("the grader made a report outside its schema: " + "; ".join(errors[:5]))
    return report
