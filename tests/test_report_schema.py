"""The report is data with a documented schema: what every page renders from."""
import json

from course.grading import scoring
from course.grading.grader import grade_files
from course.grading.report import SCHEMA_FILE, failed_report, feedback_text, schema_errors
from course.exercises import EXERCISES, ROBUSTNESS_SHARE
from course.grading.suite_runner import TestResult as Result
from tests.conftest import ROOT


def test_the_schema_is_a_valid_json_schema_and_rejects_a_report_without_its_checks():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))
    report = grade_files([ROOT / "solutions" / "rope.py"], only=["rope.rope_inv_freq"])
    assert schema_errors(report) == []
    stages = {c["title"]: c["stage"] for c in report["exercises"][0]["checks"]}
    assert stages["returns float32 of shape (d/2,)"] == stages["rejects an odd d with a ValueError naming d"] == "robustness"
    assert stages["gives base^(-2k/d) for each pair k"] == "core"
    broken = json.loads(json.dumps(report))
    del broken["exercises"][0]["checks"]
    assert any("checks" in e for e in schema_errors(broken))
    assert schema_errors(failed_report("no files")) == []


def test_every_check_is_in_the_report_none_hidden_and_the_mistakes_come_first(tmp_path):
    """Five failing checks: all five are data and all five are in the feedback (no '... and N more'),
    after the recognised mistake."""
    results = [Result(f"check {i}", False, 1.0, f"wrong {i}", mistake="wrong-dtype") for i in range(5)]
    results.append(Result("fine", True, 1.0))
    exercise = scoring.scored("rope.apply_rope", results)
    assert schema_errors({"version": 2, "score": exercise["score"], "max_score": exercise["max_score"],
                          "exercises": [exercise], "notes": [], "files": {}}) == []
    assert [c["outcome"] for c in exercise["checks"]] == ["failed"] * 5 + ["passed"]
    assert exercise["mistakes"][0]["key"] == "wrong-dtype"
    lines = exercise["feedback"].splitlines()
    assert lines[0].startswith("Recognised mistake: wrong output dtype")
    assert all(f"- check {i}: wrong {i}" in lines for i in range(5)) and "more" not in exercise["feedback"]
    assert exercise["score"] == round(EXERCISES["rope.apply_rope"].points / 6, 2)


def test_robustness_shares_a_fixed_part_of_the_points_and_is_listed_after_the_mathematics():
    """The robustness checks carry ROBUSTNESS_SHARE of the points, the core ones the rest, by weight within
    each; the feedback lists a failing core check, and the mistake it names, before failing robustness
    checks given before it (and a mistake more of them name). With no robustness check that runs, the
    core checks carry all the points, and the other way round."""
    points = EXERCISES["rope.apply_rope"].points
    results = [Result("keeps dtype", False, 1.0, "wrong dtype", mistake="wrong-dtype", stage="robustness"),
               Result("keeps dtype again", False, 0.0, "wrong dtype", mistake="wrong-dtype", stage="robustness"),
               Result("keeps device", True, 3.0, stage="robustness"),
               Result("rotates", False, 2.0, "wrong angle", mistake="half-precision"),
               Result("keeps norms", True, 2.0)]
    exercise = scoring.scored("rope.apply_rope", results)
    assert exercise["score"] == round(points * ((1 - ROBUSTNESS_SHARE) * 2 / 4 + ROBUSTNESS_SHARE * 3 / 4), 2)
    assert [c["stage"] for c in exercise["checks"]] == ["robustness"] * 3 + ["core"] * 2
    assert [m["key"] for m in exercise["mistakes"]] == ["half-precision", "wrong-dtype"]
    lines = exercise["feedback"].splitlines()
    assert lines.index("- rotates: wrong angle") < lines.index("- keeps dtype: wrong dtype")
    skipped = [Result("keeps dtype", False, 1.0, not_run="not this convention", stage="robustness"), *results[3:]]
    assert scoring.scored("rope.apply_rope", skipped)["score"] == round(points * 2 / 4, 2)
    robust_only = [Result("keeps dtype", False, 1.0, "wrong dtype", stage="robustness"),
                   Result("keeps device", True, 3.0, stage="robustness")]
    assert scoring.scored("rope.apply_rope", robust_only)["score"] == round(points * 3 / 4, 2)


def test_a_stub_is_not_attempted_and_said_once():
    results = [Result(f"check {i}", False, 1.0, "raised NotImplementedError", raised="NotImplementedError")
               for i in range(3)]
    exercise = scoring.scored("rope.apply_rope", results)
    assert exercise["status"] == "not_attempted"
    assert feedback_text(exercise).count("NotImplementedError") == 1


def test_code_that_passes_a_check_is_graded_not_a_stub_when_what_it_calls_is_one():
    """alibi_attention written out, calling a learner's alibi_bias that still raises NotImplementedError:
    its argument check passes and earns points, so it is graded (its checks shown), not called a stub."""
    results = [Result(f"check {i}", False, 1.0, "raised NotImplementedError in alibi_bias",
                      raised="NotImplementedError") for i in range(3)]
    results.append(Result("rejects more queries than keys", True, 1.0))
    exercise = scoring.scored("alibi.alibi_attention", results)
    assert exercise["score"] > 0
    assert exercise["status"] == "graded"
    assert "Not implemented yet" not in exercise["feedback"] and "3 of 4 checks fail" in exercise["feedback"]


def test_two_files_with_one_name_in_two_folders_are_told_apart(tmp_path):
    """a/work.py (ALiBi) and b/work.py (sinusoidal): the report's files are keyed by their path in the
    submission, so each section is graded on, and said to be graded on, its own file."""
    for folder, section in (("a", "alibi"), ("b", "sinusoidal")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "work.py").write_text((ROOT / "solutions" / f"{section}.py").read_text())
    report = grade_files([tmp_path])
    assert report["score"] == report["max_score"] > 0, report
    assert report["files"] == {"a/work.py": {"sections": ["alibi"], "adapted_by": []},
                               "b/work.py": {"sections": ["sinusoidal"], "adapted_by": []}}
