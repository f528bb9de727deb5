"""The learner-side part of each built-in convention, run in the learner's process.

``course.adapting.conventions.<key>`` defines ``adapt(found) -> {contract name: object}``: `found`
holds the learner's objects the grader found with signatures that fit the convention (grader side:
course.grading.conventions.<key>), and what it returns is made with the helpers of course.adapting.
`install` is what the grader sends: it runs `adapt`, probes each contract name the grader asked for
(course.adapting.probe) and hands the objects to the grader, without touching the learner's names.
"""
from __future__ import annotations

import importlib

from course.adapting.probe import probe


def install(key: str, namespace: dict, found, names):
    """The objects convention `key` makes of the learner's `found` names in `namespace`, each probed,
    as a function returning them in the order of `names` (for the grader's Bound)."""
    if not key.isidentifier():
        raise ValueError(f"not a convention: {key!r}")
    made = importlib.import_module(f"{__name__}.{key}").adapt({name: namespace[name] for name in found})
    objects = tuple(made[name] for name in names)
    for name, made_object in zip(names, objects):
        probe(name, made_object)
    return lambda: objects
