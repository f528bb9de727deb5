"""The learner-side part of each built-in convention, run in the learner's process.

``course.adapting.conventions.<key>`` defines ``adapt(found) -> {contract name: object}``: `found`
holds the learner's objects the grader found with signatures that fit the convention (grader side:
course.grading.conventions.<key>), and what it returns is made with the helpers of course.adapting.
The grader first asks which names fail their probe call (`failures`, course.adapting.probe), then
sends `install` for the others: it hands the objects to the grader without touching the learner's
names.
"""
from __future__ import annotations

import importlib

from course.adapting.probe import NotRecognised, probe


def _adapt(key: str, namespace: dict, found) -> dict:
    if not key.isidentifier():
        raise ValueError(f"not a convention: {key!r}")
    return importlib.import_module(f"{__name__}.{key}").adapt({name: namespace[name] for name in found})


def failures(key: str, namespace: dict, found, names) -> dict[str, str]:
    """{contract name: why} for each of `names` that convention `key` cannot make of `found` or that
    fails its probe call (what the grader then reports as not recognised)."""
    try:
        made = _adapt(key, namespace, found)
    except Exception as err:  # noqa: BLE001 - the learner's code did not build as the convention expects
        return dict.fromkeys(names, f"building from your code raised {type(err).__name__}: {err}")
    failed = {}
    for name in names:
        try:
            probe(name, made[name])
        except NotRecognised as err:
            failed[name] = str(err)
    return failed


def install(key: str, namespace: dict, found, names):
    """The objects convention `key` makes of the learner's `found` names in `namespace`, each probed,
    as a function returning them in the order of `names` (for the grader's Bound)."""
    made = _adapt(key, namespace, found)
    objects = tuple(made[name] for name in names)
    for name, made_object in zip(names, objects):
        probe(name, made_object)
    return lambda: objects
