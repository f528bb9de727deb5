"""An exercise's result as data: its score, every check with its outcome, the mistakes recognised.

Each check is core (the mathematics) or robustness (dtype, device, inputs left unchanged, ValueErrors:
course.grading.suite_runner.stage). The robustness checks that run carry ROBUSTNESS_SHARE of the
exercise's points together, the core checks the rest; within a stage, points are in proportion to the
weight of the checks that pass. Checks that did not run (pytest.skip: a feature the code's convention
lacks) are neither passed nor failed and weigh nothing; a stage none of whose checks run leaves all the
points to the other. The text a learner reads is rendered from this (course.grading.report).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from course.exercises import EXERCISES, ROBUSTNESS_SHARE
from course.grading.mistakes import described
from course.grading.report import feedback_text

if TYPE_CHECKING:  # not imported: it imports torch, and Gradescope's time-limit path builds exercises without it
    from course.grading.suite_runner import TestResult


def _exercise(exercise_id: str, status: str, score: float = 0.0, checks=(), mistakes=(), detail: str = "") -> dict:
    applicable = status != "not_applicable"
    result = {"id": exercise_id, "title": EXERCISES[exercise_id].name, "status": status, "score": score,
              "max_score": float(EXERCISES[exercise_id].points) if applicable else 0.0, "applicable": applicable,
              "checks": list(checks), "mistakes": list(mistakes), "detail": detail}
    result["feedback"] = feedback_text(result)
    return result


def not_applicable(exercise_id: str, why: str) -> dict:
    """An exercise that does not apply (e.g. to the convention the code is written in): no points either way."""
    return _exercise(exercise_id, "not_applicable", detail=why)


def not_graded(exercise_id: str, status: str, why: str) -> dict:
    """An exercise whose name is not defined ("not_defined"), whose file does not parse ("not_parsed"),
    or that grading never reached ("not_graded": a platform's time limit, nothing submitted for it): 0."""
    return _exercise(exercise_id, status, detail=why)


def _check(result: TestResult) -> dict:
    outcome = "not_run" if result.not_run else "passed" if result.passed else "failed"
    return {"title": result.title, "outcome": outcome, "message": result.message, "reason": result.not_run or None,
            "mistake": result.mistake, "raised": result.raised, "halted": result.halted, "weight": result.weight,
            "stage": result.stage}


def _mistakes(exercise_id: str, checks: list[dict]) -> list[dict]:
    """The mistakes the failing checks recognised: those a core check names first, then the one most
    of them name first."""
    counts: dict[str, int] = {}
    core: set[str] = set()
    for check in checks:
        if check["outcome"] == "failed" and check["mistake"]:
            counts[check["mistake"]] = counts.get(check["mistake"], 0) + 1
            if check["stage"] == "core":
                core.add(check["mistake"])
    return [described(key, exercise_id) for key in sorted(counts, key=lambda k: (k not in core, -counts[k]))]


def _passed_share(ran: list[dict]) -> float:
    """The share of the points earned by the checks that ran: ROBUSTNESS_SHARE for the robustness
    checks together, the rest for the core ones, by weight within each."""
    def passed(checks):
        total = sum(c["weight"] for c in checks)
        return sum(c["weight"] for c in checks if c["outcome"] == "passed") / total if total else 0.0

    core = [c for c in ran if c["stage"] == "core"]
    robust = [c for c in ran if c["stage"] == "robustness"]
    if not (core and robust):
        return passed(ran)
    return (1 - ROBUSTNESS_SHARE) * passed(core) + ROBUSTNESS_SHARE * passed(robust)


def scored(exercise_id: str, results: list[TestResult]) -> dict:
    checks = [_check(r) for r in results]
    ran = [c for c in checks if c["outcome"] != "not_run"]
    if checks and not ran:
        return _exercise(exercise_id, "not_applicable", checks=checks, detail="none of its checks could run")
    if not checks:
        return _exercise(exercise_id, "no_checks", detail="no hidden tests ran for this exercise (a problem with the "
                                                          "grader, not your code)")
    score = round(EXERCISES[exercise_id].points * _passed_share(ran), 2)
    failed = [c for c in ran if c["outcome"] == "failed"]
    # A stub passes nothing; code that earns points but calls a stub of the learner's is graded.
    passed = any(c["outcome"] == "passed" for c in ran)
    stub = bool(failed) and not passed and all(c["raised"] == "NotImplementedError" for c in failed)
    return _exercise(exercise_id, "not_attempted" if stub else "graded", score, checks, _mistakes(exercise_id, checks))
