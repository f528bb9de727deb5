"""use_reference: the course's version of an unfinished function for the demonstrations, never
for the self-check or grading."""
import pytest
import torch

from course.learner.reference import reference_wrapper, use_reference
from course.learner import selfcheck
from course.learner.selfcheck import BORROWED, run_checks


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
    selfcheck._borrowed_calls.clear()
    module = names["RotaryEmbedding"](8)
    assert isinstance(module, torch.nn.Module) and type(module).__name__ == "RotaryEmbedding"
    assert selfcheck._borrowed_calls == {"rope.RotaryEmbedding"}  # building one counts as using it (below)
    assert all(o.message == BORROWED for o in run_checks("rope.RotaryEmbedding", names))


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="section.name"):
        reference_wrapper("apply_rope")
    with pytest.raises(ValueError, match="no reference"):
        reference_wrapper("rope.torch")  # imported by the solutions module, not one of its definitions


def test_the_bug_zoos_answer_is_not_lent():
    """use_reference("zoo.diagnosis") would hand over the answer key of what the notebook assesses."""
    with pytest.raises(ValueError, match="does not lend"):
        reference_wrapper("zoo.diagnosis")


def test_nothing_changes_while_grading(monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "1")
    names = {}
    use_reference("rope.apply_rope", names)
    assert names == {}


# Grading never sees the stand-in: tests/attacks/use_reference.py (test_isolation.py).


def test_a_check_that_passes_only_through_a_borrowed_function_fails_naming_it():
    """Grading calls the learner's own sinusoidal_encoding from their sinusoidal_table, so a table
    that works only through the borrowed encoding must not pass the self-check either; a table
    that does not call the encoding still passes beside the borrowed one."""
    notebook = {"torch": torch}  # a notebook's globals: its cells' definitions and the stand-in
    exec("def sinusoidal_table(t, d, base=10000.0):\n"
         "    return sinusoidal_encoding(torch.arange(t), d, base)\n", notebook)
    use_reference("sinusoidal.sinusoidal_encoding", notebook)
    outcomes = run_checks("sinusoidal.sinusoidal_table", notebook)
    assert outcomes and all(not o.passed and "sinusoidal_encoding" in o.message and "use_reference" in o.message
                            for o in outcomes)

    exec("def sinusoidal_table(t, d, base=10000.0):\n"
         "    p = torch.arange(t, dtype=torch.float64)[:, None]\n"
         "    w = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)\n"
         "    return torch.stack((torch.sin(p * w), torch.cos(p * w)), -1).reshape(t, d).float()\n", notebook)
    assert all(o.passed for o in run_checks("sinusoidal.sinusoidal_table", notebook))
