"""The plan of a grading (course.grading.routing.plan), made once every file is loaded: which file
grades each section (its own file, then the file defining most of its names, then the first
file), which exercises are graded (`only`, else every section some file defines) and which of
their tests run; then one pytest session over exactly the planned sections' suites."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from course.exercises import graded_names, section_exercises
from course.grading import grader
from course.grading.grader import grade_file, grade_files
from course.grading.routing import plan
from tests.conftest import ROOT
from tests.test_class_report import solution, with_bug

NAMES = graded_names()


def a_file(index: int, name: str, defined=(), code="", syntax_error=""):
    """A loaded file as the grader's LoadedFile holds it: the graded names it defines."""
    def sections(names):
        return {names[n].split(".")[0] for n in loaded.present}

    loaded = SimpleNamespace(index=index, submission=SimpleNamespace(path=Path(name), cells=[("module", code)]),
                             present=set(defined), defined={n: "callable" for n in defined}, adaptations=[],
                             syntax_error=syntax_error, sections=sections)
    return loaded


def names_of(section: str) -> list[str]:
    return [e.name for e in section_exercises(section)]


def ids_of(*sections: str) -> list[str]:
    return [e.id for s in sections for e in section_exercises(s)]


def test_each_section_is_graded_on_its_own_file_else_the_file_defining_most_of_its_names():
    rope = a_file(0, "06_rope.ipynb", names_of("rope") + names_of("alibi")[:1])
    alibi = a_file(1, "07_alibi.ipynb", names_of("alibi")[:1])
    helpers = a_file(2, "my_helpers.py", names_of("sinusoidal") + names_of("rope") + names_of("alibi"))
    planned = plan([rope, alibi, helpers], NAMES)
    assert planned.owners == {"sinusoidal": helpers, "rope": rope, "alibi": alibi}
    assert planned.exercise_ids == ids_of("sinusoidal", "rope", "alibi")
    # alibi is graded on its own file, which defines only alibi_slopes: the other alibi exercises are not run
    assert planned.to_run == ids_of("sinusoidal", "rope") + ["alibi.alibi_slopes"]
    assert planned.suites == ["sinusoidal", "rope", "alibi"]
    assert planned.touched["rope"] == [rope, helpers]


def test_two_files_named_for_one_section_go_to_the_one_defining_more_then_the_first():
    first = a_file(0, "06_rope.ipynb", names_of("rope")[:1])
    second = a_file(1, "06_rope_v2.ipynb", names_of("rope"))
    assert plan([first, second], NAMES).owners["rope"] is second
    same = a_file(1, "06_rope_v2.ipynb", names_of("rope")[:1])
    assert plan([first, same], NAMES).owners["rope"] is first


def test_only_limits_the_sections_and_their_exercises():
    rope = a_file(0, "06_rope.ipynb", names_of("rope"))
    planned = plan([rope], NAMES, ["rope.apply_rope", "alibi.alibi_slopes", "nosuch.exercise"])
    assert planned.exercise_ids == ["rope.apply_rope", "alibi.alibi_slopes"]   # asked for, defined or not
    assert planned.to_run == ["rope.apply_rope"] and planned.suites == ["rope"]
    assert planned.owners == {"rope": rope, "alibi": rope}                     # no alibi file: the first file


@pytest.mark.parametrize("undefined", [True, False])
def test_exercises_run_only_when_their_owner_defines_them(undefined):
    defined = [n for n in names_of("rope") if not (undefined and n == "rope_matrix")]  # its cell raised before it
    planned = plan([a_file(0, "06_rope.ipynb", defined)], NAMES)
    assert "rope.rope_matrix" in planned.exercise_ids
    assert ("rope.rope_matrix" in planned.to_run) is not undefined


def test_a_module_that_does_not_parse_is_planned_for_the_sections_it_was_meant_for():
    broken = a_file(0, "06_rope.py", code="def alibi_slopes(n):\n    return (\n", syntax_error="SyntaxError")
    other = a_file(1, "mine.py", names_of("sinusoidal"))
    planned = plan([broken, other], NAMES)
    assert planned.exercise_ids == ids_of("sinusoidal", "rope", "alibi") and planned.to_run == ids_of("sinusoidal")
    assert planned.owners == {"sinusoidal": other, "rope": broken, "alibi": broken}
    assert plan([broken, other], NAMES, ["sinusoidal.sinusoidal_table"]).exercise_ids == ["sinusoidal.sinusoidal_table"]


def test_an_unknown_exercise_id_in_only_grades_nothing_and_fails_nothing():
    """(`serve` requests are not checked against the exercise table as the command line is.)"""
    report = grade_file(ROOT / "solutions" / "rope.py", only=["nosuch.exercise"])
    assert (report["score"], report["max_score"], report["exercises"], report["notes"]) == (0, 0.0, [], [])
    assert report["files"] == {"rope.py": {"sections": [], "adapted_by": []}}


def test_the_users_pytest_options_do_not_reach_the_hidden_suites(monkeypatch, tmp_path):
    """PYTEST_ADDOPTS=-x would stop the suites' session at the first failing test."""
    path = tmp_path / "rope.py"
    path.write_text(with_bug("rope", "apply_swapped_conventions"))
    plain = grade_file(path)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x --maxfail=1")
    assert grade_file(path) == plain and 0 < plain["score"] < plain["max_score"]


def dynamically(source: str) -> str:
    """Code that defines what `source` defines only when it runs (no graded name in its text)."""
    return f"exec(compile({source!r}, 'hidden', 'exec'))\n"


@pytest.fixture
def sessions(monkeypatch):
    """Each hidden-suites session of the grading, as (sections whose suite it collected, sections it ran)."""
    from course.grading import suite_runner

    seen = []
    original = suite_runner._run_pytest

    def run_pytest(files, plugin):
        original(files, plugin)
        seen.append(({Path(f).stem.removeprefix("test_") for f in files},
                     list(dict.fromkeys(i.split(".")[0] for i in plugin.results))))

    monkeypatch.setattr(suite_runner, "_run_pytest", run_pytest)
    return seen


def test_a_file_collects_only_the_suites_of_the_sections_it_defines(tmp_path, sessions):
    path = tmp_path / "mywork.py"
    path.write_text(solution("rope"))
    report = grade_file(path)
    assert {e["id"].split(".")[0] for e in report["exercises"]} == {"rope"}
    assert report["score"] == report["max_score"] > 0
    assert sessions == [({"rope"}, ["rope"])]


@pytest.mark.parametrize("dynamic_section", ["sinusoidal", "alibi"])
def test_a_section_defined_only_as_the_cells_run_is_graded_in_the_one_session(tmp_path, sessions, dynamic_section):
    """The plan is made once the cells have run: the one session runs both sections, in the course's order."""
    path = tmp_path / "mywork.py"
    path.write_text(solution("rope") + "\n" + dynamically(solution(dynamic_section)))
    report = grade_file(path)
    order = [s for s in ("sinusoidal", "rope", "alibi") if s in {"rope", dynamic_section}]
    assert [e["id"] for e in report["exercises"]] == ids_of(*order)
    assert report["score"] == report["max_score"] > 0, [e["feedback"] for e in report["exercises"] if e["score"] < e["max_score"]]
    assert sessions == [(set(order), order)]


def test_a_submission_without_any_graded_name_runs_no_session(tmp_path, sessions):
    path = tmp_path / "mywork.py"
    path.write_text("x = 1\n")
    assert grade_file(path)["exercises"] == [] and sessions == []


def test_a_mistake_defined_only_as_the_cells_run_loses_points_in_its_own_exercise(tmp_path):
    path = tmp_path / "mywork.py"
    path.write_text(solution("rope") + "\n" + dynamically(with_bug("alibi", "slopes_power_of_two_formula")))
    scores = {e["id"]: (e["score"], e["max_score"]) for e in grade_file(path)["exercises"]}
    assert scores["alibi.alibi_slopes"][0] < scores["alibi.alibi_slopes"][1]
    assert all(got == best for i, (got, best) in scores.items() if i != "alibi.alibi_slopes")


def test_a_file_that_fails_to_load_stops_the_grading_and_every_process_ends(tmp_path, monkeypatch, sessions):
    (tmp_path / "06_rope.py").write_text(solution("rope"))
    (tmp_path / "07_alibi.py").write_text(solution("alibi"))
    error, started, finished = RuntimeError("the fork server did not start"), [], []
    start, finish = grader.LoadedFile.start, grader.LoadedFile.finish

    def failing_start(loaded, names):
        started.append(loaded.file)
        if loaded.file == "07_alibi.py":
            raise error
        start(loaded, names)

    def counted_finish(loaded):
        finished.append(loaded.file)
        finish(loaded)

    monkeypatch.setattr(grader.LoadedFile, "start", failing_start)
    monkeypatch.setattr(grader.LoadedFile, "finish", counted_finish)
    with pytest.raises(RuntimeError) as raised:
        grade_files([tmp_path])
    assert raised.value is error and sessions == []
    assert sorted(finished) == ["06_rope.py", "07_alibi.py"] == sorted(started)
