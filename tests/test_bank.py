"""Every hidden suite rejects every wrong implementation in its bank, in the right exercise."""
import importlib
from pathlib import Path

import pytest

from course.exercises import section_exercises
from course.grading.grader import grade_file
from course.grading.mistakes import MISTAKES
from tests.conftest import GRADES_ON_RECORD, RECORD_ENV, same_as_on_record

ROOT = Path(__file__).resolve().parents[1]
BANK_SECTIONS = sorted(p.stem for p in (ROOT / "tests" / "bank").glob("*.py") if p.stem != "__init__")


def _bugs():
    for section in BANK_SECTIONS:
        for bug in importlib.import_module(f"tests.bank.{section}").BUGS:
            yield pytest.param(section, bug, id=f"{section}-{bug.id}")


def test_bank_ids_are_unique():
    ids = [p.id for p in _bugs()]
    assert len(ids) == len(set(ids)) and ids


def _bank_bugs():
    return [p.values[1] for p in _bugs()]


def _convention_entries():
    """(folder, bug): the wrong files of the convention tests (tests/conventions/<folder>/mistakes.py)."""
    return [(path.parent.name, bug) for path in sorted((ROOT / "tests" / "conventions").glob("*/mistakes.py"))
            for bug in importlib.import_module(f"tests.conventions.{path.parent.name}.mistakes").BUGS]


def _convention_bugs():
    return [bug for _, bug in _convention_entries()]


@pytest.mark.parametrize("bugs", [_bank_bugs, _convention_bugs], ids=["bank", "conventions"])
def test_bank_keys_are_known(bugs):
    unknown = [bug.id for bug in bugs() if bug.key and bug.key not in MISTAKES]
    assert unknown == [], "keys not in course/grading/mistakes.py MISTAKES"


@pytest.mark.parametrize("bugs", [_bank_bugs, _convention_bugs], ids=["bank", "conventions"])
def test_most_wrong_code_is_named_by_a_mistake_key(bugs):
    """At least 80 % of the planted mistakes carry a key, which test_suite_rejects_bug (and the
    conventions' wrong-code test) require the report to name: a class report counts keys."""
    bugs = list(bugs())
    unnamed = [bug.id for bug in bugs if not bug.key]
    assert bugs and len(unnamed) <= 0.2 * len(bugs), f"{len(unnamed)} of {len(bugs)} without a key: {unnamed}"


@pytest.mark.parametrize("section,bug", list(_bugs()))
def test_suite_rejects_bug(section, bug, tmp_path):
    source = (ROOT / "solutions" / f"{section}.py").read_text()
    path = tmp_path / f"{section}_{bug.id}.py"
    path.write_text(source + "\n\n# --- the mistake under test ---\n" + bug.code)
    report = grade_file(path, only=[e.id for e in section_exercises(section)])
    same_as_on_record(f"bank/{section}/{bug.id}", report)
    scores = {e["id"]: e for e in report["exercises"]}
    target = scores[bug.exercise]
    assert target["score"] < target["max_score"], f"{bug.exercise} did not lose points for {bug.id}"
    assert bug.mistake in target["feedback"], f"feedback lacks {bug.mistake!r}:\n{target['feedback']}"
    keys = [m["key"] for m in target["mistakes"]]
    assert not bug.key or bug.key in keys, f"the report names {keys}, not {bug.key!r}:\n{target['feedback']}"
    allowed = {bug.exercise, *bug.cascades}
    collateral = {i: e["score"] for i, e in scores.items() if i not in allowed and e["score"] < e["max_score"]}
    assert not collateral, f"{bug.id} also cost points in {collateral}"


def test_the_record_holds_exactly_the_wrong_code_of_the_tests():
    """No grade on record for wrong code that is gone (nor missing: same_as_on_record says so)."""
    import json
    import os

    if os.environ.get(RECORD_ENV) == "1":
        pytest.skip("recording: the record is being written")

    names = {f"bank/{p.values[0]}/{p.values[1].id}" for p in _bugs()}
    names |= {f"conventions/{folder}/{bug.id}" for folder, bug in _convention_entries()}
    assert set(json.loads(GRADES_ON_RECORD.read_text())) == names

