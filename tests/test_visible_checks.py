"""The learner's self-check passes on correct code (any style) and fails, politely, on stubs."""
import importlib
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


def test_the_table_is_html_for_jupyterlab_and_text_elsewhere():
    """The same outcomes, escaped, with the pointer to reread and the summary, in both forms."""
    from course.learner.selfcheck import CheckTable, Outcome

    table = CheckTable([Outcome("rope.apply_rope", "keeps <lengths>", True),
                        Outcome("rope.rope_matrix", "is orthogonal", False, "expected 1.0\ngot <2.0>")])
    page = table._repr_html_()
    assert "keeps &lt;lengths&gt;" in page and "got &lt;2.0&gt;" in page and "<lengths>" not in page
    assert "white-space:pre-wrap" in page and "FAIL" in page and "pass" in page
    assert "section 6.5 RoPE as one matrix" in page and "1 of 2 checks pass." in page
    text = repr(table)
    assert "got <2.0>" in text and "1 of 2 checks pass." in text and "<td" not in text


def test_a_failing_grade_cell_ends_with_one_line_in_a_real_kernel(tmp_path):
    """In Jupyter the grade cell shows the table (HTML and plain text) and then one line, not a
    traceback into course/learner/selfcheck.py; the error keeps its type for nbgrader."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "from course.selfcheck import check\ndef alibi_slopes(n_heads):\n    raise NotImplementedError()",
        'check("alibi.alibi_slopes")',
        'def alibi_slopes(n_heads):\n    import torch\n    return torch.ones(n_heads)\ncheck("alibi.alibi_slopes")',
    )]
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell, kind in ((nb.cells[1], "NotImplementedError"), (nb.cells[2], "AssertionError")):
        shown = [o for o in cell.outputs if o.output_type == "display_data"]
        assert shown and {"text/html", "text/plain"} <= set(shown[0].data), cell.outputs
        assert "checks pass." in shown[0].data["text/plain"]
        (error,) = [o for o in cell.outputs if o.output_type == "error"]
        assert error.ename == kind and len(error.traceback) == 1, error.traceback
        assert error.traceback[0].startswith(f"{kind}: alibi.alibi_slopes") and "selfcheck" not in error.traceback[0]


def test_a_slopes_mistake_fails_only_the_slopes_check():
    """As in grading, attention built on the learner's own alibi_slopes is judged with those slopes:
    a wrong alibi_slopes is named by its own check, never blamed on the attention exercises."""
    from tests.bank.alibi import BUGS

    solution = (ROOT / "solutions" / "alibi.py").read_text()
    bugs = [b for b in BUGS if b.exercise == "alibi.alibi_slopes" and not b.cascades]
    assert len(bugs) >= 3
    for bug in bugs:
        names = namespace(ROOT / "solutions" / "alibi.py", solution + "\n" + bug.code)
        assert any(not o.passed for o in run_checks("alibi.alibi_slopes", names)), bug.id
        for target in ("alibi.alibi_attention", "alibi.cached_alibi_attention"):
            failed = [(o.title, o.message[:200]) for o in run_checks(target, names) if not o.passed]
            assert failed == [], (bug.id, failed)


def _bank():
    for section in sorted(p.stem for p in (ROOT / "tests" / "bank").glob("*.py") if p.stem != "__init__"):
        for bug in importlib.import_module(f"tests.bank.{section}").BUGS:
            yield pytest.param(section, bug, id=f"{section}-{bug.id}")


@pytest.mark.parametrize("section,bug", list(_bank()))
def test_visible_checks_never_blame_another_exercise(section, bug):
    """A learner with one mistake fails no visible check outside the exercises the hidden suite
    takes points from (under `nbgrader autograde` a failing check() zeroes its grade cell)."""
    path = ROOT / "solutions" / f"{section}.py"
    names = namespace(path, path.read_text() + "\n" + bug.code)
    allowed = {bug.exercise, *bug.cascades}
    blamed = {e.id: [o.title for o in run_checks(e.id, names) if not o.passed]
              for e in section_exercises(section) if e.id not in allowed}
    assert not any(blamed.values()), {k: v for k, v in blamed.items() if v}
