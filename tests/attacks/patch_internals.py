# section: rope; breaks: rope.rope_matrix
# Patches, in the learner's process, everything a grader running there might use to
# compare values (torch, numpy, pytest, the course's own checking helpers, builtins), then
# returns a wrong rope_matrix. The verdict is made in the grader's process, so none of
# this matters.
import builtins as _builtins
import sys as _sys
import types as _types

import numpy as _np


def _always_true(*args, **kwargs):
    return True


def _never_fails(*args, **kwargs):
    return None


torch.allclose = _always_true
torch.equal = _always_true
torch.isclose = lambda a, b, *args, **kwargs: torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)
torch.testing.assert_close = _never_fails
torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
torch.Tensor.__ne__ = lambda self, other: torch.zeros(self.shape, dtype=torch.bool)
_np.allclose = _always_true
_np.testing.assert_allclose = _never_fails
_np.testing.assert_array_equal = _never_fails
_builtins.AssertionError = type("AssertionError", (Exception,), {})
_fake_pytest = _types.ModuleType("pytest")
_fake_pytest.approx = lambda expected, *args, **kwargs: _types.SimpleNamespace(__eq__=_always_true)
_fake_pytest.fail = _never_fails
_sys.modules["pytest"] = _fake_pytest
_fake_checking = _types.ModuleType("course.checking")
_fake_checking.expect_close = _never_fails
_fake_checking.expect_equal = _never_fails
_sys.modules["course.checking"] = _fake_checking


def rope_matrix(position, d, base=10000.0, interleaved=False):
    return torch.zeros(d, d)
