"""The hidden suites' device checks: a device check that cannot run on the
emulated device is "not run" without taking other checks with it, and which second device the
learner's process has (and whether it is emulated) is decided by the grader, not by that process."""
from __future__ import annotations

import pytest

from course.sandbox.second_device import real_second_device
from course.grading.grader import grade_file
from tests.test_isolation import FAST, assert_valid, attack, grade_attack, new_marker

pytestmark = pytest.mark.skipif(real_second_device() is not None, reason="these attacks target the emulated device")


def test_a_device_check_not_run_does_not_hide_an_in_place_change(tmp_path):
    by_id, target, _, _ = grade_attack("device_skip_hides_mutation", tmp_path)
    feedback = by_id[target]["feedback"]
    assert "in place" in feedback and "could not run here" in feedback, feedback


def test_the_learners_process_cannot_claim_a_gpu(tmp_path):
    """Its forged answers reach every device check of the section: each fails (none passes on its word)."""
    path, section, target = attack("device_claims_gpu", tmp_path, new_marker())
    by_id = assert_valid(grade_file(path, limits=FAST), section)
    assert by_id[target]["score"] < by_id[target]["max_score"], by_id[target]
    for exercise_id in ("setup.position_ids_from_mask", "setup.next_position_ids", target):
        feedback = by_id[exercise_id]["feedback"]
        assert "returned a tensor on 'cuda'" in feedback and "emulated" in feedback, feedback
