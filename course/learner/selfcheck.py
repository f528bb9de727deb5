"""``check("rope")``: run a notebook's visible checks and print what passes and what fails."""
from __future__ import annotations

import contextlib
import html
import inspect
import io
import os
import warnings
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from course.exercises import EXERCISES, where_to_look
from course.learner.visible_checks import checks_for

SANDBOX_ENV = "COURSE_SANDBOX"
NOT_IMPLEMENTED = "not implemented yet"
REFERENCE_MARK = "__course_reference__"  # set by use_reference on its stand-ins (course.learner.reference)
BORROWED = "this is the course's version (use_reference), not yours: write your own and run its cell"
_borrowed_calls: set[str] = set()  # the stand-ins that ran during the current check


def note_borrowed_call(target: str) -> None:
    """A use_reference stand-in ran (course.learner.reference): a check passing now passed through the
    course's code, where grading calls the learner's own."""
    _borrowed_calls.add(target)


def through_borrowed(targets: list[str]) -> str:
    names = ", ".join(t.split(".", 1)[1] for t in targets)
    return (f"passes only through the course's {names} (use_reference): grading calls your own {names}, "
            "so finish it and run its cell")


class Namespace:
    """Attribute access to the learner's globals; a missing name fails with advice."""

    def __init__(self, names: dict):
        self._names = names

    def __getattr__(self, name):
        try:
            return self._names[name]
        except KeyError:
            raise AssertionError(f"`{name}` is not defined yet: write it and run its cell first") from None


@dataclass
class Outcome:
    exercise_id: str
    title: str
    passed: bool
    message: str = ""


def run_checks(target: str, names: dict) -> list[Outcome]:
    """Run the visible checks of `target` against a namespace; never raises for learner errors."""
    outcomes = []
    namespace = Namespace(names)
    for chk in checks_for(target):
        if getattr(names.get(EXERCISES[chk.exercise_id].name), REFERENCE_MARK, None):
            outcomes.append(Outcome(chk.exercise_id, chk.title, False, BORROWED))
            continue
        _borrowed_calls.clear()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
                    contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                chk.run(namespace)
        except NotImplementedError:
            outcomes.append(Outcome(chk.exercise_id, chk.title, False, NOT_IMPLEMENTED))
        except AssertionError as err:
            outcomes.append(Outcome(chk.exercise_id, chk.title, False, str(err)))
        except Exception as err:  # noqa: BLE001 - the learner's code raised: report it as a failure
            outcomes.append(Outcome(chk.exercise_id, chk.title, False, f"your code raised {type(err).__name__}: {err}"))
        else:
            borrowed = sorted(_borrowed_calls)
            outcomes.append(Outcome(chk.exercise_id, chk.title, not borrowed,
                                    through_borrowed(borrowed) if borrowed else ""))
    return outcomes


def render(outcomes: list[Outcome], console: Console) -> None:
    table = Table(show_lines=False, title_justify="left")
    table.add_column("exercise")
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("what to fix")
    for o in outcomes:
        fix = "" if o.passed else f"{escape(o.message)}\n[dim]see {escape(where_to_look(o.exercise_id))}[/dim]"
        status = "[green]pass[/green]" if o.passed else "[red]FAIL[/red]"
        table.add_row(o.exercise_id.split(".", 1)[1], escape(o.title), status, fix)
    console.print(table)
    console.print(summary(outcomes))


def summary(outcomes: list[Outcome]) -> str:
    failed = sum(not o.passed for o in outcomes)
    return f"{len(outcomes) - failed} of {len(outcomes)} checks pass." if outcomes else "No checks found."


_CELL = "padding:2px 8px;text-align:left;vertical-align:top"


class CheckTable:
    """What ``check()`` shows: an HTML table in JupyterLab (colours, wrapped messages), the same
    table as plain text in a terminal, in nbconvert's text output or without IPython."""

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes

    def __repr__(self) -> str:
        out = io.StringIO()
        render(self.outcomes, Console(file=out, width=110, force_terminal=False, force_jupyter=False))
        return out.getvalue().rstrip("\n")

    def _repr_html_(self) -> str:
        rows = []
        for o in self.outcomes:
            status = ('<b style="color:#1a7f37">pass</b>' if o.passed else '<b style="color:#cf222e">FAIL</b>')
            fix = "" if o.passed else (
                f'<div style="white-space:pre-wrap;font-family:monospace">{html.escape(o.message)}</div>'
                f'<div style="opacity:0.7">see {html.escape(where_to_look(o.exercise_id))}</div>')
            rows.append(f'<tr><td style="{_CELL}"><code>{html.escape(o.exercise_id.split(".", 1)[1])}</code></td>'
                        f'<td style="{_CELL}">{html.escape(o.title)}</td><td style="{_CELL}">{status}</td>'
                        f'<td style="{_CELL}">{fix}</td></tr>')
        head = "".join(f'<th style="{_CELL}">{h}</th>' for h in ("exercise", "check", "", "what to fix"))
        return (f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table><p>{html.escape(summary(self.outcomes))}</p>')


def show(rich, text: str) -> None:
    """`rich` through IPython's display where a kernel or shell runs (JupyterLab picks its HTML or
    Markdown), else `text` printed."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(rich)
    else:
        print(text)


def _one_line(error: Exception) -> Exception:
    """IPython shows this error as its one line instead of a traceback through the course's code
    (IPython calls ``_render_traceback_`` when an exception has one); the type is unchanged, so
    nbgrader and pytest see the same NotImplementedError or AssertionError."""
    error._render_traceback_ = lambda: [f"{type(error).__name__}: {error}"]
    return error


def check(target: str, names: dict | None = None):
    """Run the visible checks for a section or one exercise of the calling notebook.

    For one exercise ('rope.apply_rope') a failure raises AssertionError, so a grade cell
    fails visibly; for a whole section it only shows the table. Inside the grading
    sandbox it does nothing. Under `nbgrader autograde` a failure of written code only shows
    the table: the grade cell's points are the hidden grading's (after it in the cell), as in
    the sandboxed gradebook, so one mistake costs the same points on both.
    """
    if os.environ.get(SANDBOX_ENV):
        return None
    if names is None:
        names = inspect.currentframe().f_back.f_globals
    outcomes = run_checks(target, names)
    table = CheckTable(outcomes)
    show(table, repr(table))
    failures = [o for o in outcomes if not o.passed]
    if target in EXERCISES and failures:
        if all(o.message == NOT_IMPLEMENTED for o in failures):
            raise _one_line(NotImplementedError(
                f"{target} is {NOT_IMPLEMENTED}: write it above, run its cell, then run this cell again "
                f'(stuck? use_reference("{target}") runs the later cells with the course\'s version)'))
        if os.environ.get("NBGRADER_EXECUTION") == "autograde":
            return None
        raise _one_line(AssertionError(
            f"{target}: {len(failures)} of {len(outcomes)} checks fail, first: {failures[0].title} "
            f"(the table above says why; see {where_to_look(target)})"))


def not_while_grading() -> None:
    """Raise ImportError inside the grading sandbox: a notebook cell that only compares with an
    optional library (transformers) then skips itself there, as when the library is absent. The
    comparison grades nothing, and importing transformers cost every grading about a second."""
    if os.environ.get(SANDBOX_ENV):
        raise ImportError("not while grading: this cell only compares with an optional library")
