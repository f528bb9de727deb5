"""use_reference: the course's version of an unfinished function for the demonstrations, never
for the self-check or grading."""
import re

import pytest
import torch

from course.grading.grader import grade_file
from course.learner.reference import reference_wrapper, use_reference
from course.learner.selfcheck import BORROWED, run_checks
from tests.conftest import ROOT

STUB = re.compile(r"(def apply_rope\(.*?\n)(\s*)### BEGIN SOLUTION\n.*?### END SOLUTION", re.S)


def test_the_stand_in_computes_what_the_course_computes_and_the_self_check_refuses_it():
    names = {}
    use_reference("rope.apply_rope", names)
    x, positions = torch.randn(2, 5, 8, dtype=torch.float64), torch.arange(5)
    # An independent rotation of the half-split pairs (k, k + 4) by positions * 10000^(-2k/8).
    angles = positions[:, None].double() * 10000.0 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    first, second = x[..., :4], x[..., 4:]
    expected = torch.cat([first * angles.cos() - second * angles.sin(), first * angles.sin() + second * angles.cos()], -1)
    assert torch.allclose(names["apply_rope"](x, positions), expected)
    outcomes = run_checks("rope.apply_rope", names)
    assert outcomes and all(not o.passed and o.message == BORROWED for o in outcomes)


def test_a_class_stand_in_is_a_module_of_the_course_class():
    names = {}
    use_reference("rope.RotaryEmbedding", names)
    module = names["RotaryEmbedding"](8)
    assert isinstance(module, torch.nn.Module) and type(module).__name__ == "RotaryEmbedding"
    assert all(o.message == BORROWED for o in run_checks("rope.RotaryEmbedding", names))


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="section.name"):
        reference_wrapper("apply_rope")
    with pytest.raises(ValueError, match="no reference"):
        reference_wrapper("rope.torch")  # imported by the solutions module, not one of its definitions


def test_nothing_changes_while_grading(monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "1")
    names = {}
    use_reference("rope.apply_rope", names)
    assert names == {}


def test_grading_grades_the_learners_own_function(tmp_path):
    """A module that leaves apply_rope unwritten and calls use_reference gets no points for it."""
    source = STUB.sub(lambda m: f"{m.group(1)}{m.group(2)}raise NotImplementedError()", (ROOT / "solutions" / "rope.py").read_text())
    assert "raise NotImplementedError()" in source
    path = tmp_path / "rope_attempt.py"
    path.write_text(source + '\nfrom course.selfcheck import use_reference\nuse_reference("rope.apply_rope")\n')
    report = grade_file(path, only=["rope.apply_rope", "rope.rope_inv_freq"])
    scores = {e["id"]: e["score"] for e in report["exercises"]}
    assert scores["rope.apply_rope"] == 0 and scores["rope.rope_inv_freq"] == 1
