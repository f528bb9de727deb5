"""Gradescope's autograder: ``python -m course.gradescope build --out autograder.zip``.

Gradescope builds an image from the zip: it unpacks the zip into ``/autograder/source`` and runs
``setup.sh`` there once, as root. For each submission it puts the learner's files in
``/autograder/submission``, runs ``/autograder/run_autograder`` (a copy of the zip's) from
``/autograder``, and shows ``/autograder/results/results.json`` (Gradescope's "Autograder
Specifications"; ``gradescope_results.schema.json`` beside this file is that format as a JSON
Schema). The zip holds:

- ``setup.sh``: a virtual environment ``/autograder/venv`` with the pinned packages of
  pyproject.toml (torch first, its CPU build); the hidden suites made unreadable to other users.
- ``run_autograder``: ``python -m course.gradescope run`` under a hard time limit; if that
  fails or runs out of time, it writes a results.json with score 0 and the reason itself.
- ``course/`` (the grader), ``grader_tests/`` (the hidden suites of the chosen sections only),
  ``requirements.txt`` and ``gradescope_config.json`` (sections, visibility, limits). Never
  ``solutions/`` nor ``source_notebooks/``.

``run`` grades the whole submission folder with course.grading.grader.grade_files (the learner's code in
the sandbox, the hidden suites here), then runs each section's visible checks (what ``check()``
shows in the notebook) in the learner's process. results.json maps them as follows:

- one test per exercise of the assignment's sections, also those the learner did not submit:
  name ``<exercise id> (<notebook section to reread>)``, number ``<notebook>.<exercise>``
  (``6.2``: the second exercise of notebook 06), the exercise's points and the grader's feedback;
  visibility ``--hidden-visibility`` (default after_published: shown once grades are published);
- one test per section, ``<section>: visible checks``, number ``<notebook>.0``, always visible,
  no points, passed or failed: the checks the learner can run in the notebook, so they reveal
  nothing of the hidden suites;
- the top-level ``output`` (always visible, no scores): which files were graded for which
  section, what the assignment expects and was not found, cells that raised, why grading
  stopped; ``score`` is the sum of the exercise tests; stdout (the grader's log) is hidden.

The written questions are graded by hand in a second Gradescope assignment: ``build`` also writes
their outline (``written_outline.pdf`` beside the zip: one page per question, answers blank, the
same pages as every learner's ``python -m course.export ... --pdf answers.pdf``), the template
of a templated PDF assignment (course.platforms.written).

Environment: AUTOGRADER_ROOT replaces ``/autograder`` (tests run the autograder in a temporary
folder), PYTHON is the interpreter setup.sh builds the environment from, TORCH_INDEX_URL where
setup.sh takes torch from when pip has no settings of its own (default: the CPU builds).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

from course.exercises import SECTIONS
from course.grading.integrity import ALLOW_UNCONFINED_HELP
from course.sandbox.limits import add_limit_options, limits_from
from course.platforms.gradescope.autograder_zip import build, course_version
from course.platforms.gradescope.config import ROOT_ENV, TIME_LIMIT, VISIBILITIES, Config
from course.platforms.gradescope.run import run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course.gradescope",
                                     description="Gradescope's autograder for the course.")
    commands = parser.add_subparsers(dest="command", required=True)
    build_ = commands.add_parser("build", help="write the autograder zip to upload on Gradescope",
                                 description="Write the autograder zip: upload it on the assignment's "
                                             "Configure Autograder page.")
    build_.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    build_.add_argument("--written-out", type=Path, metavar="PDF",
                        help="the written questions' outline to write (default written_outline.pdf beside the zip)")
    build_.add_argument("--sections", action="append", metavar="SECTION[,SECTION...]",
                        help=f"what the assignment grades (default all: {','.join(SECTIONS)}); repeatable")
    build_.add_argument("--hidden-visibility", choices=VISIBILITIES, default="after_published",
                        help="when learners see the graded tests (default after_published); the visible checks "
                             "and the summary are always shown")
    build_.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help=f"seconds for a whole run (default {TIME_LIMIT:g}); keep Gradescope's timeout longer "
                             "by a minute")
    build_.add_argument("--no-visible-checks", action="store_true",
                        help="leave out the tests that run the notebook's visible checks")
    build_.add_argument("--conventions", action="store_true",
                        help="grade code written to other conventions (Hugging Face, Meta, ...) through them, "
                             "excusing what they cannot express; off by default, so that no learner chooses "
                             "which checks apply to them")
    add_limit_options(build_)
    run_ = commands.add_parser("run", help="grade /autograder/submission (what run_autograder calls)")
    run_.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")),
                      help=f"Gradescope's /autograder (default ${ROOT_ENV} or /autograder)")
    run_.add_argument("--started", type=float, metavar="EPOCH_SECONDS",
                      help="when run_autograder started this run (the time limit counts from then, the "
                           "grader's own start-up included; default: now)")
    # What grading requires of the platform (course.grading.integrity).
    run_.add_argument("--allow-unconfined", action="store_true", help=ALLOW_UNCONFINED_HELP)
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.root.resolve(), started=args.started, allow_unconfined=args.allow_unconfined)
    sections = [s.strip() for item in args.sections or [",".join(SECTIONS)] for s in item.split(",") if s.strip()]
    try:
        config = Config(sections=sections, hidden_visibility=args.hidden_visibility,
                        visible_checks=not args.no_visible_checks, time_limit=args.time_limit,
                        limits=asdict(limits_from(args)), course_version=course_version())
    except ValueError as err:
        parser.error(str(err))
    summary = build(args.out, config)
    from course.platforms.written import ExportError  # (building only: a run has no use for it)

    try:
        written = write_outline(args.written_out or Path(args.out).with_name("written_outline.pdf"), config.sections)
    except ExportError as err:
        print(f"course.gradescope: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {summary['out']} ({summary['files']} files, {summary['bytes'] / 1024:.0f} KiB): "
          f"{', '.join(summary['sections'])}, {summary['exercises']} exercises, {summary['points']:g} points")
    print(f"  graded tests visible: {summary['hidden_visibility']}; whole run at most {summary['time_limit']:g} s "
          f"(stopped at {summary['outer_limit']} s)")
    print("  on Gradescope: a Programming Assignment worth "
          f"{summary['points']:g} points; Configure Autograder: upload {Path(summary['out']).name}, base image "
          "Ubuntu 22.04 or later; Autograder settings: timeout of at least "
          f"{math.ceil((summary['outer_limit'] + 60) / 60):g} minutes; the default 768 MB of memory is enough "
          "(README: Gradescope)")
    print(written)
    return 0


def write_outline(out: Path, sections) -> str:
    """Write the written questions' outline PDF; return what to set up on Gradescope with it."""
    from course.platforms.written import outline_pages, write_pdf

    pages = outline_pages(sections)
    if not pages:
        return "  written part: none (these sections ask no written question)"
    write_pdf(out, pages, blank=True)
    points = sum(p.question.points for p in pages)
    only = f" --sections {','.join(sections)}" if set(sections) != set(SECTIONS) else ""
    outline = "\n".join(f"    page {p.number}: {p.question.id} ({p.question.points:g} "
                         f"point{'s' * (p.question.points != 1)}, notebook {p.question.notebook})" for p in pages)
    cell = "" if only else ", or the last cell of a notebook with written questions"  # (that cell exports them all)
    return (f"wrote {out}: the outline of the written part, {len(pages)} questions, {points:g} points\n"
            f"  on Gradescope: a second assignment, Homework / Problem Set, submitted by students, templated "
            f"(fixed length), worth {points:g} points: upload {Path(out).name} as its template and give each "
            f"question its page:\n{outline}\n"
            f"  learners upload answers.pdf: `python -m course.export NOTEBOOK...{only} --pdf answers.pdf`{cell}; "
            f"every learner's PDF has these {len(pages)} pages")


if __name__ == "__main__":
    sys.exit(main())
