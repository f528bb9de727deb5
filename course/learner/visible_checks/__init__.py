"""Visible checks: the small tests a learner runs with ``check(...)`` in a notebook.

Each section module registers functions with ``@visible(exercise_id, title)``. A check
receives the learner's namespace (attribute access) and raises AssertionError, with a
message from course.checking, when the learner's code is wrong.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from course.exercises import EXERCISES, SECTIONS


@dataclass(frozen=True)
class VisibleCheck:
    exercise_id: str
    title: str
    run: Callable


_REGISTRY: list[VisibleCheck] = []


def visible(exercise_id: str, title: str):
    """Register a visible check for one exercise."""
    if exercise_id not in EXERCISES:
        raise ValueError(f"unknown exercise {exercise_id!r}")

    def register(fn):
        _REGISTRY.append(VisibleCheck(exercise_id, title, fn))
        return fn

    return register


def checks_for(target: str) -> list[VisibleCheck]:
    """The checks of a section ('rope') or of one exercise ('rope.apply_rope')."""
    section = target.split(".", 1)[0]
    if section not in SECTIONS or ("." in target and target not in EXERCISES):
        known = ", ".join(SECTIONS)
        raise ValueError(f"check() takes a section ({known}) or an exercise id like 'rope.apply_rope', got {target!r}")
    importlib.import_module(f"course.learner.visible_checks.{section}")
    return [c for c in _REGISTRY if c.exercise_id == target or c.exercise_id.startswith(target + ".")]
