"""A learner's written answers as pages: one per written question of the course, in the course's
order, whatever the learner handed in, so that one Gradescope outline fits every learner's PDF.

The questions (id, notebook, points, prompt) come from ``course/written_questions.json``, which
``python -m course.build`` writes from the source notebooks' ``manual:ID:POINTS`` cells. A
learner's answer is the cell whose nbgrader ``grade_id`` is ``answer-ID`` (or, nbgrader metadata
lost, whose tag is ``manual:ID:...``): found by metadata, never by reading prose. Notebooks are
hostile input: an unreadable one is an ExportError naming it, never a traceback.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.files import write_atomic
from course.exercises import NOTEBOOKS, SECTIONS
from course.learner.reveal import STUB
from course.lesson import WRITTEN_QUESTIONS_FILE

MAX_NOTEBOOK_BYTES = 64 * 2**20  # a notebook with its figures; past this it is not a lesson notebook
MAX_ANSWER_CHARS = 12_000        # about what one page holds in the smallest type


class ExportError(Exception):
    """A notebook that cannot be read, or an output that would overwrite one; the message says which."""


@dataclass(frozen=True)
class Question:
    id: str
    notebook: str   # e.g. 06_rope
    points: float
    prompt: str     # markdown


@dataclass(frozen=True)
class Page:
    """One question's page. `answer` is the learner's markdown (None: nothing written); `source`
    the notebook file it came from (None: no notebook given holds the question; "" on the blank
    outline); `truncated`: characters left out of a huge answer."""
    question: Question
    number: int
    total: int
    answer: str | None = None
    source: str | None = None
    truncated: int = 0


def questions(sections=None) -> list[Question]:
    """The written questions of the course in its order; with `sections`, those of their notebooks
    (the lab's questions belong to no section: only the whole course has them)."""
    try:
        entries = json.loads(WRITTEN_QUESTIONS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ExportError(f"the course's list of written questions is missing or damaged ({err}): "
                          "reinstall the course or run `python -m course.build`") from err
    wanted = None
    if sections is not None and set(sections) != set(SECTIONS):
        wanted = {NOTEBOOKS[s] for s in sections}
    return [Question(e["id"], e["notebook"], float(e["points"]), e["prompt"]) for e in entries
            if wanted is None or e["notebook"] in wanted]


def _answer_id(cell, known: set[str]) -> str | None:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    if not isinstance(metadata, dict):
        return None
    nbgrader = metadata.get("nbgrader")
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    if isinstance(grade_id, str) and grade_id.startswith("answer-") and grade_id[len("answer-"):] in known:
        return grade_id[len("answer-"):]
    tags = metadata.get("tags")
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and tag.startswith("manual:") and tag.count(":") == 2:
            answer_id = tag.split(":")[1]
            if answer_id in known:
                return answer_id
    return None


def _source(cell) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def shown(path: Path) -> str:
    """A file's name as messages and pages show it (a name may hold line breaks or control characters)."""
    return path.name if path.name.isprintable() else repr(path.name)


def read_answers(path: Path, known: set[str]) -> dict[str, str]:
    """The answer cells of one notebook by question id (the text without nbgrader's stub)."""
    name = shown(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ExportError(f"{name}: not a file")
        if size > MAX_NOTEBOOK_BYTES:
            raise ExportError(f"{name}: {size / 2**20:.0f} MB, too large for a lesson notebook")
        with open(path, encoding="utf-8") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's about the notebook's format: the learner can do nothing
            nb = nbformat.read(handle, as_version=4)
        cells = nb.get("cells")
    except ExportError:
        raise
    except OSError as err:
        raise ExportError(f"{name}: cannot be read ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise ExportError(f"{name}: not a notebook (not UTF-8 text)") from err
    except Exception as err:  # nbformat raises many kinds on a damaged notebook
        raise ExportError(f"{name}: not a readable notebook ({type(err).__name__}: {str(err)[:200]})") from err
    if not isinstance(cells, list):
        raise ExportError(f"{name}: not a notebook (no list of cells)")
    answers = {}
    for cell in cells:
        answer_id = _answer_id(cell, known)
        if answer_id is not None and answer_id not in answers:
            answers[answer_id] = _source(cell).replace(STUB, "").strip()
    return answers


def answer_pages(paths, sections=None) -> tuple[list[Page], list[str]]:
    """Every written question's page for these notebooks, and notes on what was odd (a notebook
    with no written question). Two notebooks answering one question are an ExportError."""
    course = questions(sections)
    known = {q.id for q in course}
    found: dict[str, tuple[str, str]] = {}
    notes = []
    for path in map(Path, paths):
        answers = read_answers(path, known)
        if not answers:
            notes.append(f"{shown(path)}: holds none of the written questions")
        for answer_id, text in answers.items():
            if answer_id in found:
                raise ExportError(f"{found[answer_id][0]} and {shown(path)} both answer {answer_id}: give one of them")
            found[answer_id] = (shown(path), text)
    pages = []
    for number, question in enumerate(course, 1):
        source, text = found.get(question.id, (None, None))
        truncated = max(0, len(text) - MAX_ANSWER_CHARS) if text else 0
        pages.append(Page(question, number, len(course), (text[:MAX_ANSWER_CHARS] if text else None), source,
                          truncated))
    return pages, notes


def outline_pages(sections=None) -> list[Page]:
    """The blank pages an instructor uploads as the Gradescope assignment's template."""
    course = questions(sections)
    return [Page(q, n, len(course), source="") for n, q in enumerate(course, 1)]


def course_notebooks(directory: Path) -> list[Path]:
    """The course's notebooks (named as released) that `directory` holds."""
    names = list(NOTEBOOKS.values()) + sorted({q.notebook for q in questions()} - set(NOTEBOOKS.values()))
    return [directory / f"{name}.ipynb" for name in names if (directory / f"{name}.ipynb").is_file()]


def write_pdf(out: Path, pages: list[Page], blank: bool = False) -> None:
    """Write `pages` as a PDF to `out` in one step (blank: the outline, without answers)."""
    from course.platforms.written_pdf import pdf_bytes  # (it draws these pages; matplotlib loads only here)

    out = Path(out)
    if out.suffix.lower() != ".pdf":
        raise ExportError(f"the output must be a .pdf file, not {out.name!r}")
    if out.is_dir():
        raise ExportError(f"{out} is a folder: name the PDF to write")
    write_atomic(out, pdf_bytes(pages, blank))


def export(paths, out: Path, sections=None) -> tuple[list, list[str]]:
    """Write the PDF of these notebooks' answers to `out` (never one of them); return its pages and notes."""
    files = []
    for path in map(Path, paths):
        files += [f for f in (course_notebooks(path) if path.is_dir() else [path]) if f not in files]
    if any(Path(out).resolve() == f.resolve() for f in files):
        raise ExportError(f"{shown(Path(out))} is one of the notebooks given: choose another output")
    pages, notes = answer_pages(files, sections)
    write_pdf(out, pages)
    return pages, notes


def summary(pages, out: Path) -> str:
    answered = sum(1 for p in pages if p.answer is not None)
    missing = [p.question.id for p in pages if p.source is None]
    empty = [p.question.id for p in pages if p.source and p.answer is None]
    return (f"wrote {out} ({len(pages)} pages, one per written question): {answered} answered"
            + (f"; no answer written: {', '.join(empty)}" if empty else "")
            + (f"; not submitted (no notebook given holds them): {', '.join(missing)}" if missing else ""))


def export_answers(out: str = "answers.pdf") -> None:
    """The course's notebooks in this folder, as saved, to `out`, said in a sentence or two."""
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
