"""Comparisons that fail with a message a learner can act on.

Used by the visible self-checks and by the hidden suites alike. Every helper raises
AssertionError (a Mismatch) whose text says what was called, on what input, what was expected
and what came back, for one entry only (never a whole hidden table); when the check recognised
a known mistake, the Mismatch carries its key, so that the grader reports it as data.
"""
from __future__ import annotations

import contextlib
import re
import sys

import torch


class Mismatch(AssertionError):
    """A failed check; `mistake`: the key of the known mistake it recognised
    (course/grading/mistakes.py), or None."""

    def __init__(self, message: str, mistake: str | None = None):
        super().__init__(message)
        self.mistake = mistake


class Hint(str):
    """A sentence for the learner that knows the key of the mistake it names (or None): what
    closest_mistake returns, or a check's own hint, e.g. Hint("Row p should be PE(p + k).",
    "offset-direction")."""

    def __new__(cls, text: str = "", mistake: str | None = None):
        hint = super().__new__(cls, text)
        hint.mistake = mistake
        return hint


def failed(message: str, hint: str = "", mistake: str | None = None) -> Mismatch:
    """The Mismatch of a check whose message ends with `hint` (a Hint names its mistake)."""
    return Mismatch(message + (f" {hint}" if hint else ""), mistake or getattr(hint, "mistake", None))


def seeded_randn(*shape, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """Reproducible normal samples that leave the global random state alone."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def left_padded_batch(pads, length: int, heads: int, d: int, d_v: int, seed: int = 0, dtype=torch.float32):
    """q, k, v (B, heads, length, d or d_v) and the 0/1 mask (B, length) whose row b starts with
    pads[b] padding tokens: the inputs of a cached attention exercise."""
    q, k, v = (seeded_randn(len(pads), heads, length, n, seed=seed + i, dtype=dtype) for i, n in enumerate((d, d, d_v)))
    return q, k, v, torch.tensor([[0] * p + [1] * (length - p) for p in pads])


def describe(value) -> str:
    """A short description of an argument: shape and dtype for tensors (also inside tuples, lists
    and dicts: a cache), repr otherwise."""
    if type(value) in (tuple, list):
        inner = ", ".join(describe(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})" if type(value) is tuple else f"[{inner}]"
    if type(value) is dict:
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8 and value.dim() <= 1 and value.device.type != "meta":
            return f"tensor({value.tolist()}, dtype={_dtype(value.dtype)})"
        device = "" if value.device.type == "cpu" else f" on {value.device.type}"
        dtype = _dtype(value.dtype)
        article = "an" if dtype[0] in "aeiou" else "a"
        return f"{article} {dtype} tensor of shape {tuple(value.shape)}{device}"
    return repr(value)


def _dtype(dtype) -> str:
    return str(dtype).replace("torch.", "")


def call_text(name: str, *args, **kwargs) -> str:
    """How a call looks in feedback, e.g. apply_rope(a float32 tensor of shape (1, 4, 8), ...)."""
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def expect_tensor(got, what: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what} returned {type(got).__name__}, expected a torch.Tensor")
    return got


def expect_shape(got, shape, what: str) -> None:
    expect_tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        raise AssertionError(f"{what} returned shape {tuple(got.shape)}, expected {tuple(shape)}")


def expect_dtype(got, dtype, what: str) -> None:
    expect_tensor(got, what)
    if got.dtype != dtype:
        raise Mismatch(f"{what} returned dtype {_dtype(got.dtype)}, expected {_dtype(dtype)}", "wrong-dtype")


def expect_close(got, expected, what: str, *, atol: float = 1e-5, rtol: float = 1e-5, hint: str = "") -> None:
    """Shape, then values: report the first entry outside tolerance, and the largest gap."""
    expected = torch.as_tensor(expected)
    expect_shape(got, expected.shape, what)
    got64, exp64 = got.detach().to("cpu", torch.float64), expected.detach().to("cpu", torch.float64)
    bad = ~torch.isclose(got64, exp64, atol=atol, rtol=rtol, equal_nan=False)
    if not bool(bad.any()):
        return
    index = tuple(int(i) for i in bad.nonzero()[0])
    gap = (got64 - exp64).abs().nan_to_num(float("inf")).max().item()
    where = f"at index {list(index)}" if index else "in the value"
    message = (
        f"{what}: wrong values {where}: expected {exp64[index].item():.6g}, got {got64[index].item():.6g} "
        f"({int(bad.sum())} of {bad.numel()} entries off, largest difference {gap:.3g}, "
        f"tolerance {atol:g} + {rtol:g}*|expected|)."
    )
    raise failed(message, hint)


def expect_equal(got, expected, what: str, hint: str = "") -> None:
    """Exact equality (integer tensors, booleans, permutations)."""
    expected = torch.as_tensor(expected)
    expect_shape(got, expected.shape, what)
    if got.dtype != expected.dtype:
        raise Mismatch(f"{what} returned dtype {_dtype(got.dtype)}, expected {_dtype(expected.dtype)}", "wrong-dtype")
    diff = got.cpu() != expected.cpu()
    if bool(diff.any()):
        index = tuple(int(i) for i in diff.nonzero()[0])
        where = f"at index {list(index)}" if index else ""
        message = f"{what}: wrong value {where}: expected {expected[index].item()}, got {got[index].item()}."
        raise failed(message, hint)


def halted(err: BaseException) -> bool:
    """Whether err is the grader's word that the learner's process hung or ended (not an exception
    their code raised): a check meeting it has no answer to judge, so it names no mistake."""
    process = sys.modules.get("course.sandbox.learner_process")  # loaded wherever such errors exist
    return process is not None and isinstance(err, (process.SubmissionTimeout, process.SubmissionCrashed))


def expect_value_error(fn, *args, mentions: str | tuple[str, ...], what: str, **kwargs) -> None:
    """fn(*args) must raise ValueError whose message names the argument `mentions` (or, given
    several, any one of them: when arguments do not fit each other, each is to blame)."""
    names = (mentions,) if isinstance(mentions, str) else tuple(mentions)
    naming = " or ".join(f"'{n}'" for n in names)
    try:
        try:
            fn(*args, **kwargs)
        except torch.jit.Error as err:  # a TorchScript function's `raise ValueError(...)` arrives as this
            scripted = re.search(r"builtins\.ValueError: (.*)\Z", str(err), re.S)
            if scripted is None:
                raise
            raise ValueError(scripted[1].strip()) from None
    except ValueError as err:
        if not any(re.search(rf"\b{re.escape(n)}\b", str(err)) for n in names):
            raise Mismatch(f"{what} raised ValueError({str(err)!r}); its message should name the argument {naming}",
                           "no-value-error") from None
        return
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - any other type is the learner's mistake to report
        if halted(err):
            raise
        raise Mismatch(f"{what} raised {type(err).__name__}({err}); expected a ValueError naming {naming}",
                       "no-value-error") from None
    raise Mismatch(f"{what} returned normally; expected a ValueError naming {naming}", "no-value-error")


def closest_mistake(got, candidates: dict, atol: float = 1e-4) -> Hint:
    """The Hint naming the first known mistake whose output matches `got`, or an empty Hint.
    `candidates` maps (key, text) to that mistake's output: course.grading.mistakes.mistake(key,
    text) in the hidden suites, a plain tuple in the visible checks (which run where
    course.grading is not readable). A NaN matches a NaN: some mistakes leave a row with
    nothing to attend to."""
    if isinstance(got, torch.Tensor):
        for (key, text), value in candidates.items():
            with contextlib.suppress(RuntimeError, TypeError):
                if got.shape == value.shape and torch.allclose(got.double(), value.double(), atol=atol, rtol=1e-4,
                                                               equal_nan=True):
                    return Hint(f"Your output matches {text}.", key)
    return Hint()
