"""``python -m course.export NOTEBOOK... --pdf answers.pdf``: a learner's written answers as a PDF
for Gradescope, one page per written question of the course, in the course's order, so one
outline fits every learner (course.platforms.written, course.platforms.written_pdf)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course.exercises import SECTIONS
from course.platforms.written import ExportError, export, summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.export", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("notebooks", nargs="+", type=Path,
                        help="the learner's notebooks (a folder: the course's notebooks in it)")
    parser.add_argument("--pdf", type=Path, required=True, help="the PDF to write, e.g. answers.pdf")
    parser.add_argument("--sections", metavar="SECTION[,SECTION...]",
                        help="only the written questions of these sections' notebooks, as the Gradescope "
                             "assignment was built with (default: the whole course)")
    args = parser.parse_args(argv)
    sections = None
    if args.sections:
        sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown or not sections:
            parser.error(f"unknown section(s) {', '.join(unknown) or '(none)'}; sections are {', '.join(SECTIONS)}")
    try:
        pages, notes = export(args.notebooks, args.pdf, sections)
    except ExportError as err:
        print(f"course.export: error: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(summary(pages, args.pdf))
    return 0


if __name__ == "__main__":
    sys.exit(main())
