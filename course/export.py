"""``python -m course.export NOTEBOOK... --pdf answers.pdf``: a learner's written answers as a PDF
for Gradescope, one page per written question of the course, in the course's order, so one
outline fits every learner (course.platforms.written, course.platforms.written_pdf). In a
notebook, ``export_answers()`` does the same for the course's notebooks beside it."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from course.exercises import SECTIONS
from course.files import write_atomic
from course.learner.selfcheck import SANDBOX_ENV
from course.platforms.written import ExportError, answer_pages, course_notebooks


def export(paths, out: Path, sections=None) -> tuple[list, list[str]]:
    """Write the PDF of these notebooks' answers to `out`; return its pages and notes."""
    from course.platforms.written_pdf import pdf_bytes  # (matplotlib: only once there is something to draw)

    files = []
    for path in map(Path, paths):
        files += course_notebooks(path) if path.is_dir() else [path]
    out = Path(out)
    if out.suffix.lower() != ".pdf":
        raise ExportError(f"the output must be a .pdf file, not {out.name!r}")
    if any(out.resolve() == f.resolve() for f in files):
        raise ExportError(f"{out.name} is one of the notebooks given: choose another output")
    if out.is_dir():
        raise ExportError(f"{out} is a folder: name the PDF to write")
    pages, notes = answer_pages(files, sections)
    write_atomic(out, pdf_bytes(pages))
    return pages, notes


def summary(pages, out: Path) -> str:
    answered = sum(1 for p in pages if p.answer is not None)
    missing = [p.question.id for p in pages if p.source is None]
    empty = [p.question.id for p in pages if p.source and p.answer is None]
    return (f"wrote {out} ({len(pages)} pages, one per written question): {answered} answered"
            + (f"; no answer written: {', '.join(empty)}" if empty else "")
            + (f"; not submitted (no notebook given holds them): {', '.join(missing)}" if missing else ""))


def export_answers(out: str = "answers.pdf") -> None:
    """The export cell at the end of a notebook: the course's notebooks in this folder, as saved,
    to `out`. Does nothing while a notebook is graded."""
    if os.environ.get(SANDBOX_ENV) or os.environ.get("NBGRADER_EXECUTION"):
        return
    notebooks = course_notebooks(Path.cwd())
    if not notebooks:
        print(f"No notebook of the course in {Path.cwd()}: run this cell in the notebook itself.")
        return
    try:
        pages, notes = export(notebooks, Path(out))
    except ExportError as err:
        print(f"Could not write {out}: {err}")
        return
    print("\n".join(notes + [summary(pages, Path(out)),
                             "Only saved work counts: save your notebooks (Ctrl+S) before you run this cell. "
                             "Upload the PDF to the written assignment on Gradescope."]))


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
