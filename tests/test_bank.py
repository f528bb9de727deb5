"""Every hidden suite rejects every wrong implementation in its bank, in the right exercise."""
import importlib
from pathlib import Path

import pytest

from course.exercises import section_exercises
from course.grading.grader import grade_file
from course.grading.mistakes import MISTAKES

ROOT = Path(__file__).resolve().parents[1]
BANK_SECTIONS = sorted(p.stem for p in (ROOT / "tests" / "bank").glob("*.py") if p.stem != "__init__")


def _bugs():
    for section in BANK_SECTIONS:
        for bug in importlib.import_module(f"tests.bank.{section}").BUGS:
            yield pytest.param(section, bug, id=f"{section}-{bug.id}")


def test_bank_ids_are_unique():
    ids = [p.id for p in _bugs()]
    assert len(ids) == len(set(ids)) and ids


def test_bank_keys_are_known():
    unknown = [p.id for p in _bugs() if p.values[1].key and p.values[1].key not in MISTAKES]
    assert unknown == [], "keys not in course/grading/mistakes.py MISTAKES"


@pytest.mark.parametrize("section,bug", list(_bugs()))
def test_suite_rejects_bug(section, bug, tmp_path):
    source = (ROOT / "solutions" / f"{section}.py").read_text()
    path = tmp_path / f"{section}_{bug.id}.py"
    path.write_text(source + "\n\n# --- the mistake under test ---\n" + bug.code)
    report = grade_file(path, only=[e.id for e in section_exercises(section)])
    scores = {e["id"]: e for e in report["exercises"]}
    target = scores[bug.exercise]
    assert target["score"] < target["max_score"], f"{bug.exercise} did not lose points for {bug.id}"
    assert bug.mistake in target["feedback"], f"feedback lacks {bug.mistake!r}:\n{target['feedback']}"
    keys = [m["key"] for m in target["mistakes"]]
    assert not bug.key or bug.key in keys, f"the report names {keys}, not {bug.key!r}:\n{target['feedback']}"
    allowed = {bug.exercise, *bug.cascades}
    collateral = {i: e["score"] for i, e in scores.items() if i not in allowed and e["score"] < e["max_score"]}
    assert not collateral, f"{bug.id} also cost points in {collateral}"
