"""The learner's self-check passes on correct code (any style) and fails, politely, on stubs."""
import importlib.util
import json
import re

import pytest

from course.exercises import NOTEBOOKS, section_exercises
from course.learner.selfcheck import NOT_IMPLEMENTED, check, run_checks
from tests.conftest import ROOT, alternative_exercises, alternatives, source_notebook

REGION = re.compile(r"^(\s*)### BEGIN SOLUTION\n.*?^\s*### END SOLUTION$", re.S | re.M)


def namespace(path, text=None):
    spec = importlib.util.spec_from_file_location(f"ns_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    exec(compile(text if text is not None else path.read_text(), str(path), "exec"), module.__dict__)
    return vars(module)


def stubbed(section):
    """The solutions module as released: every solution region replaced by nbgrader's stub."""
    path = ROOT / "solutions" / f"{section}.py"
    return namespace(path, REGION.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", path.read_text()))


@pytest.mark.parametrize("section", list(NOTEBOOKS))
def test_checks_pass_on_solutions(section):
    outcomes = run_checks(section, namespace(ROOT / "solutions" / f"{section}.py"))
    assert {o.exercise_id for o in outcomes} == {e.id for e in section_exercises(section)}
    assert [o for o in outcomes if not o.passed] == []


@pytest.mark.parametrize("path", alternatives(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_checks_pass_on_other_correct_styles(path):
    names = namespace(path)
    outcomes = [o for exercise_id in alternative_exercises(path) for o in run_checks(exercise_id, names)]
    assert outcomes and [o for o in outcomes if not o.passed] == []


@pytest.mark.parametrize("section", list(NOTEBOOKS))
def test_checks_fail_on_stubs_as_not_implemented(section):
    outcomes = run_checks(section, stubbed(section))
    assert outcomes and all(not o.passed for o in outcomes)
    assert all(o.message == NOT_IMPLEMENTED for o in outcomes), [o.message for o in outcomes][:3]


def test_check_of_one_exercise_raises_for_the_grade_cell(capsys):
    stub = stubbed("alibi")
    with pytest.raises(NotImplementedError, match="alibi.alibi_slopes"):
        check("alibi.alibi_slopes", stub)
    wrong = dict(namespace(ROOT / "solutions" / "alibi.py"), alibi_bias=lambda slopes, q, k: -stub["torch"].ones(1))
    with pytest.raises(AssertionError, match="alibi.alibi_bias"):
        check("alibi.alibi_bias", wrong)
    assert check("alibi", namespace(ROOT / "solutions" / "alibi.py")) is None
    assert "checks pass." in capsys.readouterr().out


def test_check_is_silent_in_the_grading_sandbox(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SANDBOX", "1")
    assert check("rope.apply_rope", {}) is None
    assert capsys.readouterr().out == ""


def test_unknown_target_is_a_clear_error():
    with pytest.raises(ValueError, match="section"):
        check("attention_is_all_you_need")


def test_a_torchscript_value_error_counts_as_a_value_error(tmp_path):
    """TorchScript re-raises a scripted `raise ValueError(...)` as torch.jit.Error; the checks
    judge it as the ValueError it is (the grader's process does the same)."""
    from course.checking import expect_value_error

    path = tmp_path / "scripted.py"
    path.write_text("import torch\n\n@torch.jit.script\ndef even(d: int) -> int:\n"
                    "    if d % 2:\n        raise ValueError('d must be even')\n    return d\n")
    even = namespace(path)["even"]
    expect_value_error(even, 3, mentions="d", what="even(3)")
    with pytest.raises(AssertionError, match="should name the argument 'base'"):
        expect_value_error(even, 3, mentions="base", what="even(3)")


def test_a_comparison_cell_skips_itself_only_while_grading(monkeypatch):
    from course.selfcheck import not_while_grading

    monkeypatch.delenv("COURSE_SANDBOX", raising=False)
    assert not_while_grading() is None
    monkeypatch.setenv("COURSE_SANDBOX", "1")
    with pytest.raises(ImportError, match="not while grading"):
        not_while_grading()


@pytest.mark.parametrize("section", list(NOTEBOOKS))
def test_every_cell_importing_transformers_is_skipped_while_grading(section):
    """transformers costs a learner process about a second to import: a notebook cell that only
    compares with it calls not_while_grading() first, so gradings do not pay for it."""
    notebook = json.loads(source_notebook(section).read_text())
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "transformers" not in source:
            continue
        imports = [line for line in source.splitlines() if line.lstrip().startswith(("import transformers",
                                                                                     "from transformers"))]
        if imports:
            assert "not_while_grading()" in source.split(imports[0])[0], f"{section}: {source[:300]}"
