"""Pages (course.platforms.written) as a PDF, one page per question, with matplotlib alone: markdown
parsed by mistune (nbconvert's parser), math by matplotlib's mathtext, fonts embedded as TrueType
(pdf.fonttype 42) so that the text can be extracted and searched. No LaTeX, no browser.

Math that mathtext cannot read is shown as written, in a fixed-width font, and the page says so;
type shrinks until a page holds its question and answer, and what still does not fit is cut with
a note (the page count never depends on an answer).
"""
from __future__ import annotations

import io
import re
import textwrap
import warnings
from dataclasses import dataclass
from functools import lru_cache

import matplotlib
import mistune
import mistune.plugins.math as mistune_math
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

from course.platforms.written import Page

WIDTH, HEIGHT = 595.0, 842.0     # A4, in points
MARGIN = 50.0
SIZES = (10.0, 9.0, 8.0, 7.0, 6.0)
# LaTeX commands notebooks use that mathtext lacks, and mathtext's nearest equivalent
_MATH_SPELLINGS = {r"\lVert": r"\Vert", r"\rVert": r"\Vert", r"\lvert": "|", r"\rvert": "|", r"\tfrac": r"\frac",
                   r"\dfrac": r"\frac", r"\text": r"\mathrm", r"\operatorname*": r"\operatorname",
                   r"\le": r"\leq", r"\ge": r"\geq", r"\ne": r"\neq"}
_MARKDOWN = mistune.create_markdown(renderer=None, plugins=["math", "strikethrough"])
# as Jupyter reads it, inline math may run over a line break (mistune's stops at one)
_MARKDOWN.inline.register("inline_math", mistune_math.INLINE_MATH_PATTERN.replace(r"[^$\\\n]", r"[^$\\]"),
                          mistune_math.parse_inline_math, before="codespan")
_MAX_FORMULA = 1_000             # characters: a longer formula is shown as written
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Run:
    text: str
    style: str = "plain"   # plain, bold, italic, mono, math
    raw: bool = False      # math shown as written: mathtext could not read it


@dataclass
class Line:
    runs: list             # (x offset, Run, whether a space precedes it)
    height: float
    indent: float = 0.0


def _fixed_math(tex: str) -> str:
    for latex, mathtext in _MATH_SPELLINGS.items():
        tex = re.sub(re.escape(latex) + r"(?![A-Za-z])", lambda _: mathtext, tex)
    return tex


def _font(style: str, size: float) -> FontProperties:
    return FontProperties(family="monospace" if style == "mono" else "sans-serif", size=size,
                          weight="bold" if style == "bold" else "normal",
                          style="italic" if style == "italic" else "normal")


@lru_cache(maxsize=50_000)
def _measure(text: str, style: str, size: float) -> tuple[float, float] | None:
    """(width, height) in points, or None when mathtext cannot read `text`."""
    try:  # the outlines' metrics, unhinted, as the PDF sets the glyphs
        width, height, _ = text_to_path.get_text_width_height_descent(
            f"${text}$" if style == "math" else text, _font(style, size), ismath=style == "math")
    except Exception:  # mathtext raises ValueError and, on some input, others
        return None
    return float(width), float(height)


def _inline_runs(children, style="plain") -> list[Run]:
    runs = []
    for node in children or []:
        kind = node.get("type")
        if kind in ("text", "inline_html"):
            runs.append(Run(node.get("raw", ""), style))
        elif kind == "strong":
            runs += _inline_runs(node.get("children"), "bold")
        elif kind in ("emphasis", "strikethrough"):
            runs += _inline_runs(node.get("children"), "italic" if style == "plain" else style)
        elif kind == "codespan":
            runs.append(Run(node.get("raw", ""), "mono"))
        elif kind in ("inline_math", "block_math"):
            runs.append(Run(" ".join(node.get("raw", "").split()), "math"))
        elif kind in ("softbreak", "linebreak"):
            runs.append(Run("\n" if kind == "linebreak" else " ", style))
        else:  # links, images and the like: their text
            runs += _inline_runs(node.get("children"), style) or [Run(node.get("raw", ""), style)]
    return runs


def _blocks(nodes, depth=0):
    """(runs, indent, kind) per block of markdown, in reading order."""
    for node in nodes or []:
        kind = node.get("type")
        if kind in ("paragraph", "block_text"):
            yield _inline_runs(node.get("children")), depth, "paragraph"
        elif kind == "heading":
            yield [Run(r.text, "math" if r.style == "math" else "bold") for r in _inline_runs(node.get("children"))], \
                depth, "heading"
        elif kind == "list":
            ordered = node.get("attrs", {}).get("ordered")
            for number, item in enumerate(node.get("children") or [], 1):
                first = True
                for runs, indent, sub in _blocks(item.get("children"), depth + 1):
                    if first:
                        runs = [Run(f"{number}." if ordered else "\u2022")] + runs
                        first = False
                    yield runs, indent, sub
        elif kind == "block_code":
            for line in node.get("raw", "").rstrip("\n").split("\n"):
                yield [Run(line or " ", "mono")], depth + 1, "code"
        elif kind == "block_math":
            yield [Run(" ".join(node.get("raw", "").split()), "math")], depth + 1, "paragraph"
        elif kind == "block_quote":
            yield from _blocks(node.get("children"), depth + 1)
        elif kind == "thematic_break":
            yield [Run("\u2014" * 10)], depth, "paragraph"
        elif kind != "blank_line" and node.get("raw"):
            yield [Run(node["raw"])], depth, "paragraph"


def _atoms(runs, size):
    """Unbreakable pieces: (run, (width, height), whether a space precedes it), words of text and
    whole formulas; (None, ...) for a forced line break."""
    gap = False
    for run in runs:
        if run.style == "math":
            measured = _measure(_fixed_math(run.text), "math", size) if len(run.text) <= _MAX_FORMULA else None
            if measured is not None:
                yield run, measured, gap
                gap = False
                continue
            run = Run(f"${run.text}$", "mono", raw=True)
        if run.style == "mono":  # code keeps its spaces: one piece (cut where wider than a line)
            text = run.text.replace("\n", " ")
            yield run if text == run.text else Run(text, "mono", run.raw), _measure(text, "mono", size) or (0.0, size), gap
            gap = False
            continue
        for word in re.split(r"([ \t]+|\n)", run.text):
            if word == "\n":
                yield None, (0.0, 0.0), False
                gap = False
            elif word.isspace() or not word:
                gap = gap or bool(word)
            else:
                yield Run(word, run.style, run.raw), _measure(word, run.style, size) or (0.0, size), gap
                gap = False


def _parsed(markdown: str) -> list:
    try:
        return list(_blocks(_MARKDOWN(markdown)))
    except (RecursionError, ValueError, TypeError, AttributeError):  # markdown nested past reason: as written
        return [([Run(line, "mono")], 0, "code") for line in markdown.splitlines()]


def _split(atom: Run, w: float, h: float, gap: bool, room: float, size: float):
    """A word wider than a line, in pieces that fit."""
    if w <= room or atom.style == "math" or len(atom.text) < 2:
        yield atom, (w, h), gap
        return
    step = max(1, int(len(atom.text) * room / w * 0.95))
    for start in range(0, len(atom.text), step):
        piece = Run(atom.text[start:start + step], atom.style, atom.raw)
        yield piece, _measure(piece.text, piece.style, size) or (0.0, size), gap or start > 0


def layout(markdown: str, size: float, width: float) -> list[Line]:
    """Lines of `markdown` set in type of `size` points within `width`."""
    lines = []
    space = _measure("a b", "plain", size)[0] - _measure("ab", "plain", size)[0]
    for runs, depth, kind in _parsed(_CONTROL.sub("", markdown)):
        indent = 14.0 * depth
        scale = 1.2 if kind == "heading" else 1.0
        current, x, height = [], 0.0, size * 1.25 * scale
        pieces = (piece for atom, (w, h), gap in _atoms(runs, size * scale)
                  for piece in ([(None, (w, h), gap)] if atom is None else
                                _split(atom, w, h, gap, width - indent, size * scale)))
        for atom, (w, h), gap in pieces:
            step = space * scale if gap and current else 0.0
            if atom is None or (current and x + step + w > width - indent):
                lines.append(Line(current, height, indent))
                current, x, height, step = [], 0.0, size * 1.25 * scale, 0.0
                if atom is None:
                    continue
            x += step
            current.append((x, atom, bool(step)))
            x += w
            height = max(height, h + size * 0.45)
        lines.append(Line(current, height, indent))
        lines.append(Line([], size * 0.5))  # space between blocks
    return lines


def _draw_line(fig, line: Line, y: float, size: float, left: float) -> None:
    """Words of one style next to each other go out as one string, so extracted text reads as written."""
    groups = []
    for x, run, gap in line.runs:
        if groups and groups[-1][1].style == run.style != "math" and groups[-1][1].raw == run.raw:
            groups[-1] = (groups[-1][0], Run(groups[-1][1].text + " " * gap + run.text, run.style, run.raw))
        else:
            groups.append((x, run))
    for x, run in groups:
        math = run.style == "math"
        fig.text((left + line.indent + x) / WIDTH, y / HEIGHT, f"${_fixed_math(run.text)}$" if math else run.text,
                 fontproperties=_font(run.style, size), parse_math=math, va="baseline",
                 color="firebrick" if run.raw else "black")


def _header(page: Page) -> str:
    q = page.question
    return (f"Question {page.number} of {page.total}: {q.id} ({q.points:g} point{'s' if q.points != 1 else ''})"
            f"  \u00b7  notebook {q.notebook}")


def _status(page: Page) -> str | None:
    if page.source is None:
        return "Not submitted: none of the notebooks given holds this question."
    if page.answer is None and page.source:
        return "No answer written."
    return None


def _fit(page: Page, blank: bool):
    """The largest size at which the page's prompt and answer fit, with their lines."""
    width = WIDTH - 2 * MARGIN
    room = HEIGHT - 2 * MARGIN - 60
    for size in SIZES:
        prompt = layout(page.question.prompt, size, width)
        answer = [] if blank or page.answer is None else layout(page.answer, size, width)
        if sum(l.height for l in prompt) + sum(l.height for l in answer) <= room or size == SIZES[-1]:
            return size, prompt, answer


def draw_page(page: Page, blank: bool = False) -> Figure:
    fig = Figure(figsize=(WIDTH / 72, HEIGHT / 72))
    size, prompt, answer = _fit(page, blank)
    y = HEIGHT - MARGIN
    fig.text(MARGIN / WIDTH, y / HEIGHT, _header(page), fontproperties=_font("bold", 12), parse_math=False,
             va="baseline")
    y -= 26
    notes = []
    for line in prompt:
        y -= line.height
        _draw_line(fig, line, y, size, MARGIN)
    y -= 8
    fig.add_artist(Line2D([MARGIN / WIDTH, 1 - MARGIN / WIDTH], [y / HEIGHT] * 2, color="gray", lw=0.6))
    y -= 18
    label = "Answer" + (f" (from {page.source[:80]})" if page.source and not blank else "")
    fig.text(MARGIN / WIDTH, y / HEIGHT, label, fontproperties=_font("bold", 11), parse_math=False, va="baseline")
    y -= 6
    status = None if blank else _status(page)
    if status:
        fig.text(MARGIN / WIDTH, (y - 16) / HEIGHT, status, fontproperties=_font("italic", 11), parse_math=False,
                 va="baseline")
    shown = 0
    for line in answer:
        if y - line.height < MARGIN + 20:
            break
        y -= line.height
        _draw_line(fig, line, y, size, MARGIN)
        shown += 1
    if any(run.raw for line in prompt + answer for _, run, _ in line.runs):
        notes.append("Math in red could not be rendered: it is shown as written.")
    cut = sum(1 for line in answer[shown:] if line.runs)
    if cut or page.truncated:
        notes.append(f"The answer is longer than a page: {cut} more line(s)"
                     + (f" and {page.truncated} more characters" if page.truncated else "")
                     + " are not shown (see the notebook).")
    if notes:
        fig.text(MARGIN / WIDTH, (MARGIN + 8) / HEIGHT, textwrap.fill(" ".join(notes), 110), fontproperties=_font("italic", 8),
                 parse_math=False, va="top", color="firebrick")
    return fig


def pdf_bytes(pages: list[Page], blank: bool = False) -> bytes:
    """The PDF of `pages` (blank: the questions only, the outline's template)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), matplotlib.rc_context({"pdf.fonttype": 42, "mathtext.fontset": "dejavusans"}):
        warnings.simplefilter("ignore")  # glyphs the fonts lack are left blank, and said once per glyph
        with PdfPages(buffer, metadata={"Creator": "course.export", "CreationDate": None}) as pdf:
            for page in pages:
                pdf.savefig(draw_page(page, blank))
    return buffer.getvalue()
