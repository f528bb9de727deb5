"""The hidden suites' device checks: a device check that cannot run on the
emulated device is "not run" without taking other checks with it, and which second device the
learner's process has (and whether it is emulated) is decided by the grader, not by that process."""
from __future__ import annotations

import re

import pytest
import torch

from course.sandbox.second_device import EMULATED, INDEXING_ERROR, MIXING_ERROR, call_on_second_device, real_second_device
from course.grading.grader import grade_file
from tests.conftest import ROOT
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


# -- CUDA's indexing rules (torch's test_indexing: test_cpu_indices, test_invalid_device) --------
_TABLE = torch.arange(40.0).reshape(10, 4)


def _device_table_cpu_indices(x, p):
    return _TABLE.to(x.device)[p.cpu()] + x


def _cpu_table_device_indices(x, p):
    return _TABLE[p].to(x.device) + x


def _device_rows_written_with_cpu_indices(x, p):
    out = torch.zeros(10, 4, device=x.device)
    out[p.cpu()] = x
    return out


def _cpu_rows_written_with_device_indices(x, p):
    out = torch.zeros(10, 4)
    out[p] = x.cpu()
    return out.to(x.device)


def _device_rows_given_cpu_values(x, p):
    out = torch.zeros(10, 4, device=x.device)
    out[p] = x.cpu()
    return out


@pytest.mark.parametrize("fn", [_device_table_cpu_indices, _device_rows_written_with_cpu_indices,
                                _cpu_rows_written_with_device_indices])
def test_indexing_that_cuda_allows_works_on_the_emulated_device(fn):
    x, p = torch.randn(3, 4), torch.tensor([0, 4, 9])
    run = call_on_second_device(fn, (x, p), {})
    assert run["devices"] == [EMULATED.type]
    torch.testing.assert_close(run["result"], fn(x, p))


@pytest.mark.parametrize("fn,message", [(_cpu_table_device_indices, f"{INDEXING_ERROR} (cpu)"),
                                        (_device_rows_given_cpu_values, MIXING_ERROR)])
def test_indexing_that_cuda_refuses_fails_on_the_emulated_device(fn, message):
    with pytest.raises(RuntimeError, match=re.escape(message)):
        call_on_second_device(fn, (torch.randn(3, 4), torch.tensor([0, 4, 9])), {})


# A RotaryEmbedding whose cos/sin tables are plain attributes: moving the module leaves them on the
# CPU, where they are indexed with the positions (on the input's device), as CUDA refuses.
_STALE_CPU_CACHE = '''
class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        self.d, self.base, self.interleaved = d, base, interleaved
        self.extend_cache(max_len)

    def extend_cache(self, length):
        inv_freq = float(self.base) ** -(torch.arange(0, self.d, 2, dtype=torch.float64) / self.d)
        angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq
        self.cos_table, self.sin_table = angles.cos().float(), angles.sin().float()

    def forward(self, q, k, positions):
        if q.shape[-1] != self.d or k.shape[-1] != self.d:
            raise ValueError(f"q and k must have a last dimension of d={self.d}")
        positions = torch.as_tensor(positions, device=q.device)
        if int(positions.max()) >= len(self.cos_table):
            self.extend_cache(2 * int(positions.max()) + 2)
        cos, sin = self.cos_table[positions].to(q.device), self.sin_table[positions].to(q.device)
        turn = lambda x: rotate_pairs(x.float(), cos, sin, self.interleaved).to(x.dtype)
        return turn(q), turn(k)
'''
# The same tables as buffers (they move with the module), read with CPU positions: correct on CUDA.
_BUFFERS_READ_WITH_CPU_POSITIONS = '''
class RotaryEmbedding(RotaryEmbedding):
    def forward(self, q, k, positions):
        if q.shape[-1] != self.d or k.shape[-1] != self.d:
            raise ValueError(f"q and k must have a last dimension of d={self.d}")
        positions = torch.as_tensor(positions).cpu()
        if int(positions.max()) >= len(self.cos_cached):
            self.extend_cache(2 * int(positions.max()) + 2)
        cos, sin = self.cos_cached[positions], self.sin_cached[positions]
        turn = lambda x: rotate_pairs(x.float(), cos, sin, self.interleaved).to(x.dtype)
        return turn(q), turn(k)
'''


def _rope_graded_with(code: str, tmp_path):
    path = tmp_path / "rope_module.py"
    path.write_text((ROOT / "solutions" / "rope.py").read_text() + "\n\n" + code)
    return {e["id"]: e for e in grade_file(path, limits=FAST)["exercises"]}


def test_a_module_reading_its_moved_buffers_with_cpu_positions_gets_full_marks(tmp_path):
    by_id = _rope_graded_with(_BUFFERS_READ_WITH_CPU_POSITIONS, tmp_path)
    assert all(e["score"] == e["max_score"] for e in by_id.values()), by_id["rope.RotaryEmbedding"]["feedback"]


def test_a_stale_cpu_cache_indexed_with_device_positions_fails_its_device_checks_only(tmp_path):
    by_id = _rope_graded_with(_STALE_CPU_CACHE, tmp_path)
    module = by_id.pop("rope.RotaryEmbedding")
    assert all(e["score"] == e["max_score"] for e in by_id.values())
    failed = [c for c in module["checks"] if c["outcome"] != "passed"]
    assert failed and all(c["outcome"] == "failed" and c["mistake"] == "device" for c in failed), failed
    assert {c["title"] for c in failed} == {c["title"] for c in module["checks"] if "another device" in c["title"]}
    assert all(INDEXING_ERROR in c["message"] for c in failed), failed
    assert module["score"] < module["max_score"]
