"""When each section's tests start (course.grading.routing.Schedule): a section whose file is
known from the files' names and text starts as soon as that file is ready; every other
section waits for all files; sections graded in one process keep the course's order; a file
that fails stops the schedule. And the decisions equal those made once every file is ready."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from course.exercises import graded_names, section_exercises
from course.grading.grader import grade_file
from course.grading.routing import Schedule, plan
from tests.conftest import ROOT
from tests.test_class_report import solution, with_bug

NAMES = graded_names()


def a_file(index: int, name: str, static=(), runtime=()):
    """A loaded file as the grader's _Graded holds it: its graded names from its text (`static`)
    and those its process reported (`runtime`, set when it is 'ready')."""
    def sections(names):
        return {names[n].split(".")[0] for n in graded.present}

    graded = SimpleNamespace(index=index, submission=SimpleNamespace(path=Path(name)), static_sections=set(),
                             present=set(static), defined={}, failure="", adaptations=[], sections=sections)
    graded.static_sections = {NAMES[n].split(".")[0] for n in static}
    graded.runtime = set(static) | set(runtime)
    return graded


def names_of(section: str) -> list[str]:
    return [e.name for e in section_exercises(section)]


def ready(schedule: Schedule, graded) -> None:
    graded.defined = {n: "callable" for n in graded.runtime}
    graded.present = set(graded.runtime)
    schedule.file_ready(graded.index)


class Steps:
    """The schedule's sections, taken from a thread (next() blocks until one is ready)."""

    def __init__(self, schedule: Schedule):
        self.steps, self.pending, self.got = iter(schedule), None, []

    def next(self, seconds: float = 5.0):
        """The next section, or None if none is ready within `seconds` (it is then still awaited)."""
        if self.pending is None:
            self.pending = threading.Thread(target=lambda: self.got.append(next(self.steps, "done")), daemon=True)
            self.pending.start()
        self.pending.join(seconds)
        if self.pending.is_alive():
            return None
        self.pending = None
        return self.got.pop()


def test_a_section_starts_when_its_own_file_is_ready_and_the_others_wait_for_all():
    rope = a_file(0, "06_rope.ipynb", names_of("rope"))
    alibi = a_file(1, "07_alibi.ipynb", names_of("alibi"))
    helpers = a_file(2, "my_helpers.py", runtime=names_of("sinusoidal"))   # defines them only when run
    files = [rope, alibi, helpers]
    schedule = Schedule(files, NAMES, None)
    assert set(schedule.early) == {"rope", "alibi"}
    steps = Steps(schedule)
    ready(schedule, alibi)
    section, to_run = steps.next()
    assert section == "alibi" and to_run == [e.id for e in section_exercises("alibi")]
    assert schedule.owners["alibi"] is alibi and schedule.plan is None
    ready(schedule, helpers)
    assert steps.next(0.5) is None           # rope's file is not ready yet: nothing else may start
    ready(schedule, rope)
    assert steps.next()[0] == "rope"
    section, to_run = steps.next()              # all ready: the rest, decided as before
    assert section == "sinusoidal" and schedule.owners["sinusoidal"] is helpers
    assert steps.next() == "done"
    assert schedule.plan.owners == plan(files, NAMES, None).owners == {
        "sinusoidal": helpers, "rope": rope, "alibi": alibi}


def test_a_file_that_defines_an_earlier_section_keeps_the_course_order():
    # 07_alibi also defines RoPE's names, and no 06 file: rope is graded on it, so alibi waits
    both = a_file(0, "07_alibi.py", names_of("alibi") + names_of("rope"))
    other = a_file(1, "notes.py")
    schedule = Schedule([both, other], NAMES, None)
    steps = Steps(schedule)
    ready(schedule, both)
    assert steps.next(0.5) is None
    ready(schedule, other)
    assert [steps.next()[0], steps.next()[0], steps.next()] == ["rope", "alibi", "done"]


def test_two_files_named_for_one_section_are_decided_when_all_are_ready():
    first = a_file(0, "06_rope.ipynb", names_of("rope")[:1])
    second = a_file(1, "06_rope_v2.ipynb", names_of("rope"))
    schedule = Schedule([first, second], NAMES, None)
    assert schedule.early == {}
    steps = Steps(schedule)
    ready(schedule, first)
    assert steps.next(0.5) is None
    ready(schedule, second)
    assert steps.next()[0] == "rope" and schedule.owners["rope"] is second   # defines most of its names


def test_only_limits_the_sections_and_their_exercises():
    rope = a_file(0, "06_rope.ipynb", names_of("rope"))
    schedule = Schedule([rope], NAMES, ["rope.apply_rope", "alibi.alibi_slopes"])
    steps = Steps(schedule)
    ready(schedule, rope)
    assert steps.next() == ("rope", ["rope.apply_rope"])
    assert steps.next() == ("alibi", [])        # asked for, defined nowhere: nothing to run
    assert steps.next() == "done"


@pytest.mark.parametrize("undefined", [True, False])
def test_exercises_run_only_when_their_owner_defines_them(undefined):
    rope = a_file(0, "06_rope.ipynb", names_of("rope"))
    if undefined:
        rope.runtime = set(names_of("rope")) - {"rope_matrix"}   # its cell raised before defining it
    schedule = Schedule([rope], NAMES, None)
    steps = Steps(schedule)
    ready(schedule, rope)
    _, to_run = steps.next()
    assert ("rope.rope_matrix" in to_run) is not undefined


def test_a_failed_file_stops_the_schedule():
    rope = a_file(0, "06_rope.ipynb", names_of("rope"))
    alibi = a_file(1, "07_alibi.ipynb", names_of("alibi"))
    schedule = Schedule([rope, alibi], NAMES, None)
    steps = Steps(schedule)
    ready(schedule, rope)
    assert steps.next()[0] == "rope"
    error = RuntimeError("the fork server did not start")
    schedule.file_failed(alibi.index, error)
    assert steps.next() == "done" and schedule.error is error and schedule.plan is None


def test_an_unknown_exercise_id_in_only_grades_nothing_and_fails_nothing():
    """(`serve` requests are not checked against the exercise table as the command line is.)"""
    assert grade_file(ROOT / "solutions" / "rope.py", only=["nosuch.exercise"]) == \
        {"score": 0, "max_score": 0.0, "exercises": []}


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
    """Each hidden-suites session of the grading, as (sections it collected, sections it ran)."""
    from course.grading import suite_runner

    seen = []
    original = suite_runner.SubmissionPlugin.collected_sections

    def collected_sections(plugin):
        seen.append((set(plugin.collected), []))
        for section, ids in original(plugin):
            seen[-1][1].append(section)
            yield section, ids

    monkeypatch.setattr(suite_runner.SubmissionPlugin, "collected_sections", collected_sections)
    return seen


def test_a_file_collects_only_the_suites_of_the_sections_its_text_defines(tmp_path, sessions):
    path = tmp_path / "mywork.py"
    path.write_text(solution("rope"))
    report = grade_file(path)
    assert {e["id"].split(".")[0] for e in report["exercises"]} == {"rope"}
    assert report["score"] == report["max_score"] > 0
    assert sessions == [({"rope"}, ["rope"])]


@pytest.mark.parametrize("dynamic_section", ["sinusoidal", "alibi"])
def test_a_section_defined_only_as_the_cells_run_is_graded_in_a_second_session(tmp_path, sessions, dynamic_section):
    """Its suite was not collected; the second session collects every suite and carries on from
    that section, so the course's order holds (sinusoidal comes before rope, alibi after)."""
    path = tmp_path / "mywork.py"
    path.write_text(solution("rope") + "\n" + dynamically(solution(dynamic_section)))
    report = grade_file(path)
    order = [s for s in ("sinusoidal", "rope", "alibi") if s in {"rope", dynamic_section}]
    assert [e["id"] for e in report["exercises"]] == [e.id for s in order for e in section_exercises(s)]
    assert report["score"] == report["max_score"] > 0, [e["feedback"] for e in report["exercises"] if e["score"] < e["max_score"]]
    assert [ran for _, ran in sessions] == ([[], order] if dynamic_section == "sinusoidal" else [["rope"], ["alibi"]])
    assert sessions[0][0] == {"rope"} and {"sinusoidal", "rope", "alibi"} <= sessions[1][0]


def test_a_mistake_defined_only_as_the_cells_run_loses_points_in_its_own_exercise(tmp_path):
    path = tmp_path / "mywork.py"
    path.write_text(solution("rope") + "\n" + dynamically(with_bug("alibi", "slopes_power_of_two_formula")))
    scores = {e["id"]: (e["score"], e["max_score"]) for e in grade_file(path)["exercises"]}
    assert scores["alibi.alibi_slopes"][0] < scores["alibi.alibi_slopes"][1]
    assert all(got == best for i, (got, best) in scores.items() if i != "alibi.alibi_slopes")
