"""Visible checks for notebook 11, the bug zoo: the form of the diagnosis only. Whether a
diagnosis is right is for the hidden suite alone (one point per specimen)."""
from __future__ import annotations

from course import zoo
from course.learner.visible_checks import visible


def _read(ns):
    try:
        return zoo.read_diagnosis(ns.diagnosis())
    except ValueError as err:
        raise AssertionError(str(err)) from None


@visible("zoo.diagnosis", "names every specimen, A to L, and nothing else")
def _(ns):
    got = _read(ns)
    missing = [letter for letter in zoo.letters() if letter not in got]
    extra = sorted(set(got) - set(zoo.letters()))
    if missing or extra:
        raise AssertionError("diagnosis() should have one entry per specimen " + ", ".join(zoo.letters())
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; not specimens: {', '.join(extra)}" if extra else ""))


@visible("zoo.diagnosis", "every diagnosis is a key of course.zoo.MENU")
def _(ns):
    unknown = {letter: key for letter, key in _read(ns).items() if key not in zoo.MENU}
    if unknown:
        raise AssertionError("not on the menu: " + ", ".join(f"{letter}: {key!r}" for letter, key in sorted(unknown.items()))
                             + f". The keys are {', '.join(zoo.MENU)}.")
