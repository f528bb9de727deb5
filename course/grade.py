"""Grade one submission: ``python -m course.grade PATH [--format text|json]`` (see --help).

The learner's code runs in a separate, limited process (course.sandbox); the hidden suites
run in this one (course.grading) and decide pass or fail on copies of what it returns. No
process outlives the command.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from course.exercises import EXERCISES
from course.grading.report import format_text
from course.grading.integrity import ALLOW_UNCONFINED_HELP, CodeGuard, GradingRefused, require_confined
from course.sandbox.limits import add_limit_options, limits_from


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course.grade", description="Grade a notebook or .py submission.")
    parser.add_argument("path", nargs="*",
                        help="a .ipynb notebook or .py module; several files or a folder are graded together as one "
                             "learner's submission (one report)")
    parser.add_argument("--serve", action="store_true",
                        help="read JSON requests {id, path or paths, only} from stdin, one per line; answer one "
                             "JSON line {id, report, grader_failed, seconds} each")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--only", action="append", metavar="EXERCISE_ID", help="grade only this exercise (repeatable)")
    parser.add_argument("--adapter", metavar="ADAPTER.py",
                        help="a Python file run after the submission's code, defining the course's names (apply_rope, "
                             "alibi_slopes, ...) from functions written to other signatures; it may set "
                             "NOT_APPLICABLE = {feature or exercise id: why}")
    parser.add_argument("--suggest-adapter", action="store_true",
                        help="print a starting adapter for PATH (its functions and their signatures, the helpers of "
                             "course.adapting) instead of grading")
    add_limit_options(parser)
    # A grader of many learners (--serve): what it requires of the platform (course.grading.integrity).
    parser.add_argument("--allow-unconfined", action="store_true", help="with --serve: " + ALLOW_UNCONFINED_HELP)
    return parser


def _load_grader():
    """course.grading.grader, loaded after starting this process's fork server (torch then loads
    on another core while the grader loads here)."""
    import gc

    from course.sandbox.fork_client import start_in_background

    start_in_background()
    from course.grading import grader

    gc.freeze()  # what is loaded by now lives until exit: keep the collector pytest runs off it
    return grader


def grade_here(args, limits):
    """Grade in this process; the report, or None after printing why grading failed."""
    grade = _load_grader().grade
    from course.grading.request import GradeRequest
    from course.grading.suite_runner import SuiteError
    from course.sandbox.learner_process import SandboxError

    request = GradeRequest(tuple(args.path), only=tuple(args.only) if args.only else None, limits=limits,
                           adapter=args.adapter)
    try:  # a folder stays a folder: its other files are copied for the learner's code (course.grading.staging)
        return grade(request)
    except (SuiteError, SandboxError) as err:
        print(f"grading failed: {err}", file=sys.stderr)
        return None


def serve_class(limits, allow_unconfined: bool) -> int:
    """--serve: grade requests until stdin ends (0), or refuse (3): unconfined learner processes
    without --allow-unconfined, or the hidden suites or the course package changed meanwhile."""
    grader = _load_grader()
    guard = CodeGuard()
    try:
        if not allow_unconfined:
            require_confined(limits)
    except GradingRefused as err:
        print(err, file=sys.stderr)
        return 3
    refused = grader.serve(limits, guard=guard)
    if refused:
        print(refused, file=sys.stderr)
    return 3 if refused else 0


def left_behind(report: dict, paths) -> dict:
    """A file given alone is graded alone (in a class, the files beside it are others' work): when its
    code misses a module of the user's that is beside it, the note says so and what to do."""
    given = {Path(p).resolve() for p in paths}
    folders = {p.parent for p in given if p.is_file()}
    notes = []
    for entry in report.get("notes", []):
        beside = ([f / name for f in sorted(folders) for name in (f"{entry['module']}.py", entry["module"])]
                  if entry["kind"] == "module_missing" else [])
        module = next((m for m in beside if m.exists() and m not in given), None)
        notes.append({**entry, "detail": entry["detail"] + (
            f" ({module.name} is beside the file, but a file given alone is graded alone: give their folder, or "
            f"both files, to grade them together)" if module else "")})
    return {**report, "notes": notes}


def suggest(paths) -> int:
    """--suggest-adapter: a starting adapter for one file, printed (nothing of it is run)."""
    from course.grading.submission import UnreadableSubmission
    from course.grading.suggest import suggested_adapter

    if len(paths) != 1:
        print("--suggest-adapter takes one file", file=sys.stderr)
        return 2
    try:
        print(suggested_adapter(paths[0]), end="")
    except (UnreadableSubmission, OSError) as err:
        print(f"{paths[0]} cannot be read: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.serve and not args.path:
        parser.error("give a PATH to grade (or --serve)")
    unknown = [i for i in args.only or [] if i not in EXERCISES]
    if unknown:
        print(f"unknown exercise id(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.suggest_adapter:
        return suggest(args.path)
    limits = limits_from(args)
    if args.serve:
        return serve_class(limits, args.allow_unconfined)
    report = grade_here(args, limits)
    if report is None:
        return 1
    label = ", ".join(args.path)
    report = left_behind(report, args.path)
    print(json.dumps(report, indent=2) if args.format == "json" else format_text(report, label))
    return 0


if __name__ == "__main__":
    status = main()
    # The report is out and every learner process closed: leave without tearing down torch and the
    # grader's modules one by one (0.15 s). The fork server ends when this process's end of its
    # channel closes.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
