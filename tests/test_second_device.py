"""The emulated second device behaves as a GPU would for device checks: code that keeps its work
on the input's device passes whatever it does with the values; code that mixes devices fails."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from course.sandbox.second_device import EMULATED, MIXING_ERROR, call_on_second_device, real_second_device

pytestmark = pytest.mark.skipif(real_second_device() is not None, reason="a real GPU is used instead of the emulation")

X = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
POSITIONS = torch.tensor([0, 4, 9])


def _rotate(x, angles):
    half = x.shape[-1] // 2
    cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def validates_with_item(x, p):
    if p.min().item() < 0 or int(p.max()) >= 100 or bool((p < 0).any()):
        raise ValueError("p")
    inv = 1.0 / 10000 ** (torch.arange(0, 8, 2, device=x.device) / 8)
    return _rotate(x, p[:, None].float() * inv)


def python_list_then_moved(x, p):
    inv = torch.tensor([10000 ** (-k / 4) for k in range(4)]).to(x.device)
    return _rotate(x, torch.tensor(p.tolist(), dtype=torch.float32).to(x.device)[:, None] * inv)


def numpy_round_trip(x, p):
    angles = np.outer(p.cpu().numpy(), 10000.0 ** (-np.arange(4) / 4))
    return _rotate(x, torch.from_numpy(angles).float().to(x.device))


def device_keyword_and_helpers(x, p):
    inv = torch.tensor([10000 ** (-k / 4) for k in range(4)], device=x.device)
    out = torch.empty_like(x)
    out[...] = _rotate(x, p.to(x.device, torch.float32)[:, None] * inv)
    return out * torch.tensor(1.0) + x.new_tensor([0.0]) + x[..., torch.arange(8)] * 0


def complex_and_scripted(x, p):
    inv = 10000.0 ** (-torch.arange(0, 8, 2, device=x.device, dtype=torch.float64) / 8)
    cis = torch.polar(torch.ones(3, 4, dtype=torch.float64, device=x.device), p[:, None].double() * inv)
    pairs = torch.view_as_complex(torch.stack([x[..., :4], x[..., 4:]], -1).double().contiguous())
    turned = torch.view_as_real(pairs * cis)
    return _scripted_cat(turned[..., 0], turned[..., 1]).float()


def autocast_off_like_transformers(x, p):
    inv = 10000.0 ** (-torch.arange(0, 8, 2, device=x.device, dtype=torch.float32) / 8)
    with torch.autocast(device_type=x.device.type, enabled=False):
        angles = p[:, None].float() * inv
    return _rotate(x, angles)


@torch.jit.script
def _scripted_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat([a, b], dim=-1)


class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(10, 8, generator=torch.Generator().manual_seed(1)))
        self.register_buffer("ids", torch.arange(10))

    def forward(self, x):
        if x.shape[-2] > self.table.shape[0]:
            raise ValueError("max_len")
        return x + self.table[self.ids[: x.shape[-2]]]


@pytest.mark.parametrize("fn", [validates_with_item, python_list_then_moved, numpy_round_trip,
                                device_keyword_and_helpers, complex_and_scripted, autocast_off_like_transformers])
def test_correct_code_gives_its_cpu_values_on_the_emulated_device(fn):
    run = call_on_second_device(fn, (X, POSITIONS), {})
    assert run["emulated"] and run["device"] == EMULATED.type and run["devices"] == [EMULATED.type]
    torch.testing.assert_close(run["result"], fn(X, POSITIONS), rtol=1e-6, atol=1e-6)


def test_a_module_moves_with_its_parameters_and_buffers():
    module = WithBuffers()
    expected = module(X)
    run = call_on_second_device(module, (X,), {})
    assert run["devices"] == [EMULATED.type]
    torch.testing.assert_close(run["result"], expected)


def helper_on_cpu(x, p):
    return x + torch.arange(8)


def concatenated_with_cpu(x, p):
    return torch.cat([x, torch.zeros(2, 3, 1)], -1)


@pytest.mark.parametrize("fn", [helper_on_cpu, concatenated_with_cpu])
def test_mixing_devices_raises_as_on_a_gpu(fn):
    with pytest.raises(RuntimeError, match=MIXING_ERROR):
        call_on_second_device(fn, (X, POSITIONS), {})


def test_numpy_of_a_device_tensor_raises_as_on_a_gpu():
    with pytest.raises(TypeError, match=r"Tensor.cpu\(\)"):
        call_on_second_device(lambda x, p: torch.from_numpy(x.numpy() * 2), (X, POSITIONS), {})


@pytest.mark.parametrize("fn", [lambda x, p: torch.tensor(x.tolist()), lambda x, p: (x * 2).cpu()])
def test_results_left_on_the_cpu_are_reported_there(fn):
    run = call_on_second_device(fn, (X, POSITIONS), {})
    assert run["devices"] == ["cpu"]
    torch.testing.assert_close(run["result"], fn(X, POSITIONS))


def test_the_emulation_does_not_load_torch_compile():
    """torch wraps a dispatch mode in torch._dynamo.disable unless the mode says not to; that
    wrapper imports torch._dynamo (and sympy) on first use, 0.8 s of CPU in every learner process."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from course.sandbox.second_device import call_on_second_device\n"
            "from tests.test_second_device import complex_and_scripted, X, POSITIONS, WithBuffers\n"
            "call_on_second_device(complex_and_scripted, (X, POSITIONS), {})\n"
            "call_on_second_device(WithBuffers(), (X,), {})\n"
            "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'sympy')))[:3])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == "[]", done.stdout
