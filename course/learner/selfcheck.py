"""``check("rope")``: run a notebook's visible checks and print what passes and what fails."""
from __future__ import annotations

import contextlib
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
            outcomes.append(Outcome(chk.exercise_id, chk.title, True))
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
    failed = sum(not o.passed for o in outcomes)
    console.print(f"{len(outcomes) - failed} of {len(outcomes)} checks pass." if outcomes else "No checks found.")


def check(target: str, names: dict | None = None):
    """Run the visible checks for a section or one exercise of the calling notebook.

    For one exercise ('rope.apply_rope') a failure raises AssertionError, so a grade cell
    fails visibly; for a whole section it only prints the table. Inside the grading
    sandbox it does nothing.
    """
    if os.environ.get(SANDBOX_ENV):
        return None
    if names is None:
        names = inspect.currentframe().f_back.f_globals
    outcomes = run_checks(target, names)
    render(outcomes, Console(force_jupyter=False, width=110, file=None))
    failures = [o for o in outcomes if not o.passed]
    if target in EXERCISES and failures:
        if all(o.message == NOT_IMPLEMENTED for o in failures):
            raise NotImplementedError(f"{target} is {NOT_IMPLEMENTED}")
        raise AssertionError(f"{target}: {failures[0].title}: {failures[0].message}")


def not_while_grading() -> None:
    """Raise ImportError inside the grading sandbox: a notebook cell that only compares with an
    optional library (transformers) then skips itself there, as when the library is absent. The
    comparison grades nothing, and importing transformers cost every grading about a second."""
    if os.environ.get(SANDBOX_ENV):
        raise ImportError("not while grading: this cell only compares with an optional library")
