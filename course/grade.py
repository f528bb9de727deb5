"""Grade one submission: ``python -m course.grade PATH [--format text|json]``.

The learner's code runs in a separate, limited process (course.sandbox); the hidden
suites run here and decide pass or fail on copies of the values it returns.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from course.exercises import EXERCISES, SECTIONS, graded_names, section_exercises, where_to_look
from course.sandbox.proxy import Limits, Sandbox, SubmissionProxy
from course.submission import Submission, UnreadableSubmission, read_submission, statically_defined
from course.suite_runner import SuiteError, TestResult, run_suites

MAX_FAILURES_SHOWN = 3


def _missing_feedback(name: str, submission: Submission, sandbox: Sandbox) -> str:
    text = f"`{name}` is not defined in your submission."
    for (label, code), outcome in zip(submission.cells, sandbox.outcomes):
        if outcome.error and name in statically_defined(Submission(submission.path, [(label, code)]), [name]):
            where = "your module" if label == "module" else f"cell {label}"
            return f"{text} Its definition is in {where}, which failed: {outcome.error}"
    return text


def _score_exercise(exercise_id: str, results: list[TestResult]) -> dict:
    ex = EXERCISES[exercise_id]
    total = sum(r.weight for r in results)
    passed = sum(r.weight for r in results if r.passed)
    score = round(ex.points * passed / total, 2) if total else 0.0
    failures = [r for r in results if not r.passed]
    if not results:
        feedback = "No hidden tests ran for this exercise (a problem with the grader, not your code)."
    elif not failures:
        feedback = f"All {len(results)} checks pass."
    else:
        lines = [f"{len(failures)} of {len(results)} checks fail:"]
        lines += [f"- {r.title}: {r.message}" for r in failures[:MAX_FAILURES_SHOWN]]
        if len(failures) > MAX_FAILURES_SHOWN:
            lines.append(f"- ... and {len(failures) - MAX_FAILURES_SHOWN} more")
        lines.append(f"Reread {where_to_look(exercise_id)}.")
        feedback = "\n".join(lines)
    return {"id": exercise_id, "score": score, "max_score": float(ex.points), "feedback": feedback}


def grade_file(path, only=None, limits: Limits | None = None) -> dict:
    """Grade a notebook or module; `only` restricts to exercise ids. Returns the report dict."""
    try:
        submission = read_submission(path)
    except UnreadableSubmission as err:
        return {"score": 0.0, "max_score": 0.0, "exercises": [], "error": str(err)}
    names = graded_names()
    sandbox = Sandbox(submission.cells, limits or Limits())
    try:
        sandbox.start()
        defined = sandbox.defined(names)
        present = set(defined) | statically_defined(submission, names)
        if only:
            exercise_ids = [i for i in EXERCISES if i in set(only)]
        else:
            touched = {names[n].split(".")[0] for n in present}
            exercise_ids = [e.id for s in SECTIONS if s in touched for e in section_exercises(s)]
        sections = sorted({i.split(".")[0] for i in exercise_ids}, key=SECTIONS.index)
        to_run = [i for i in exercise_ids if EXERCISES[i].name in defined]
        results = run_suites(sections, sandbox, SubmissionProxy(sandbox, defined), only=to_run) if to_run else {}
        exercises = []
        for exercise_id in exercise_ids:
            name = EXERCISES[exercise_id].name
            if name not in defined:
                exercises.append({"id": exercise_id, "score": 0.0, "max_score": float(EXERCISES[exercise_id].points),
                                  "feedback": _missing_feedback(name, submission, sandbox)})
            else:
                exercises.append(_score_exercise(exercise_id, results.get(exercise_id, [])))
        notes = [f"cell {o.label}: {o.error}" if o.label != "module" else f"your module: {o.error}"
                 for o in sandbox.outcomes if o.error]
    finally:
        sandbox.close()
    report = {
        "score": round(sum(e["score"] for e in exercises), 2),
        "max_score": float(sum(e["max_score"] for e in exercises)),
        "exercises": exercises,
    }
    if notes:
        report["notes"] = notes
    return report


def format_text(report: dict, path: str) -> str:
    lines = [f"Grading {path}"]
    if report.get("error"):
        return "\n".join(lines + [f"Cannot grade: {report['error']}"])
    if not report["exercises"]:
        lines.append("No graded exercise found: define at least one function or class named in the course.")
    for ex in report["exercises"]:
        lines.append(f"{ex['id']:<40} {ex['score']:>5g} / {ex['max_score']:g}")
        if ex["score"] < ex["max_score"]:
            lines += ["    " + line for line in ex["feedback"].splitlines()]
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    lines.append(f"Total: {report['score']:g} / {report['max_score']:g}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course.grade", description="Grade a notebook or .py submission.")
    parser.add_argument("path", nargs="?", help="a .ipynb notebook or .py module")
    parser.add_argument("--serve", action="store_true",
                        help="read JSON requests {path, only} from stdin, one per line; answer one JSON report per line")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--only", action="append", metavar="EXERCISE_ID", help="grade only this exercise (repeatable)")
    for f in fields(Limits):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                            help=f"limit: {f.name.replace('_', ' ')} (default {f.default})")
    return parser


def serve(limits: Limits, requests=sys.stdin, replies=sys.stdout) -> None:
    """Grade requests until stdin closes (used by course.nbgrader_bridge: one warm grader per kernel)."""
    for line in requests:
        try:
            request = json.loads(line)
            report = grade_file(request["path"], only=request.get("only"), limits=limits)
        except (SuiteError, ValueError, KeyError, TypeError) as err:
            report = {"score": 0.0, "max_score": 0.0, "exercises": [], "error": f"grading failed: {err}"}
        replies.write(json.dumps(report) + "\n")
        replies.flush()


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.serve and not args.path:
        parser.error("give a PATH to grade (or --serve)")
    unknown = [i for i in args.only or [] if i not in EXERCISES]
    if unknown:
        print(f"unknown exercise id(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    if args.serve:
        serve(limits)
        return 0
    try:
        report = grade_file(args.path, only=args.only, limits=limits)
    except SuiteError as err:
        print(f"grading failed: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.format == "json" else format_text(report, args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
