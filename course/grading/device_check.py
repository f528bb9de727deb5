"""The hidden suites' device check: the learner's code, given inputs on a second device,
returns there what it returns on the CPU (see course.sandbox.second_device)."""
from __future__ import annotations

import pytest
import torch

from course.checking import Mismatch, call_text, expect_close
from course.sandbox.learner_process import LearnerError
from course.sandbox.second_device import DEVICE_MISTAKES, learners_second_device


def _where(device: dict) -> str:
    if device["emulated"]:
        return ("a second device (emulated, as this machine has no GPU: real values on a device named "
                f"'{device['device']}')")
    return f"a second device ('{device['device']}')"


def _tensors(value) -> list:
    return [t for t in torch.utils._pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def expect_same_on_second_device(submission, fn, *args, hint: str, **kwargs) -> None:
    """`fn(*args)` with every tensor argument (and `fn` itself, if a module) on a second device
    returns every tensor there, with the values it returns on the CPU. A failure that only the
    emulated device could cause skips the check (it could not run here) rather than fail it, so a
    test holds one device check and nothing else. Which device, and whether it is emulated, is
    the grader's to know (learners_second_device), whatever the learner's process answers."""
    call = call_text(fn._label, *args, **kwargs)
    expected = fn(*args, **kwargs)
    device = learners_second_device()
    where = _where(device)
    try:
        run = submission.on_second_device(fn, *args, **kwargs)
    except LearnerError as err:
        text = f"{call} with its inputs on {where} raised {err.learner_type}: {err}."
        if not device["emulated"] or any(m in str(err) for m in DEVICE_MISTAKES):
            raise Mismatch(f"{text} {hint}", "device") from None
        pytest.skip(f"the device check could not run here: {text}")
    wrong = [d for d in run["devices"] if d != device["device"]]
    if wrong or not run["devices"]:
        got = f"a tensor on '{wrong[0]}'" if wrong else "no tensor"
        raise Mismatch(f"{call} with its inputs on {where} returned {got}. {hint}", "device")
    got, want = _tensors(run["result"]), _tensors(expected)
    if len(got) != len(want):
        raise AssertionError(f"{call} returned {len(want)} tensors on the CPU but {len(got)} on {where}")
    for i, (g, w) in enumerate(zip(got, want)):
        label = f"{call} on {where}" + (f", result {i + 1}" if len(got) > 1 else "")
        if g.dtype != w.dtype or not (g.is_floating_point() or g.is_complex()):
            if g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g, w):
                raise AssertionError(f"{label} differs from what it returns on the CPU ({g.dtype} {tuple(g.shape)} "
                                     f"vs {w.dtype} {tuple(w.shape)})")
            continue
        expect_close(g, w, f"{label} (compared with the same call on the CPU)", atol=1e-5, rtol=1e-4)
