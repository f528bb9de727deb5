"""``use_reference("rope.apply_rope")``: carry on through a notebook with the course's version of a
function you have not finished, for the demonstrations only.

One unfinished function otherwise breaks every later cell that calls it. This binds the name, in
the notebook, to a wrapper around the course's reference (``solutions/<section>.py`` of the
course's repository): the demonstrations run, while the self-check marks that exercise as not
yours and fails any other check that passes only by calling the wrapper (grading calls the
learner's unfinished version there). Grading never sees the wrapper (inside the grading sandbox
this does nothing, so the grader grades the learner's own cell). Running your own cell again puts
your version back.
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import os

from course.exercises import NOTEBOOKS
from course.learner.selfcheck import REFERENCE_MARK, SANDBOX_ENV, note_borrowed_call


NOT_LENT = {"zoo": "the bug zoo's diagnosis is what the notebook assesses, and no later cell needs it"}


@functools.cache
def _solutions(section: str):
    from course.locations import REPO  # (only here: a learner's confined process never imports it)

    path = REPO / "solutions" / f"{section}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"course_reference_{section}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_wrapper(target: str):
    """A stand-in for `target` ('section.name') that calls the course's version, marked for check();
    raises ValueError for an unknown name, LookupError where the reference is not installed."""
    section, _, name = target.partition(".")
    if section not in NOTEBOOKS or not name:
        raise ValueError(f"use_reference takes 'section.name', e.g. 'rope.apply_rope', got {target!r}")
    if section in NOT_LENT:
        raise ValueError(f"use_reference does not lend {target!r}: {NOT_LENT[section]}")
    module = _solutions(section)
    if module is None:
        raise LookupError("the course's reference versions are not installed here (only in a clone of the course)")
    original = getattr(module, name, None)
    if getattr(original, "__module__", None) != module.__name__:
        raise ValueError(f"the course has no reference for {target!r}")
    if inspect.isclass(original):
        def __init__(self, *args, **kwargs):
            note_borrowed_call(target)
            original.__init__(self, *args, **kwargs)
        wrapper = type(name, (original,), {"__doc__": f"The course's {name} (use_reference).", "__init__": __init__})
    else:
        def wrapper(*args, **kwargs):
            note_borrowed_call(target)
            return original(*args, **kwargs)
        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__doc__ = f"The course's {name} (use_reference)."
    setattr(wrapper, REFERENCE_MARK, target)
    return wrapper


def use_reference(target: str, names: dict | None = None) -> None:
    """Use the course's version of `target` ('rope.apply_rope') in this notebook's later cells, for
    the demonstrations only: the self-check and grading still look at yours."""
    if os.environ.get(SANDBOX_ENV):
        return
    if names is None:
        names = inspect.currentframe().f_back.f_globals
    try:
        wrapper = reference_wrapper(target)
    except LookupError as err:
        print(f"use_reference: {err}.")
        return
    names[wrapper.__name__] = wrapper
    print(f"{wrapper.__name__} is now the course's version, for the demonstrations of this notebook only: "
          f"check() and grading still need yours (run your cell again to use it).")
