"""Hidden suite, section 1 (intuition).

References are independent of solutions/: attention is float64 NumPy with the mask applied
as -inf and empty rows set to zero by hand; causal masks are written out entry by entry;
shift gaps are computed from the score formulas in float64.
"""
import math

import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (Hint, Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_equal,
                             expect_shape, expect_value_error, failed)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise
F32 = dict(atol=1e-5, rtol=1e-4)



# ---------------------------------------------------------------- attention
def ref_attention(q, k, v, mask=None, bias=None, scale="sqrt", invert=False, after_softmax=False, zero_score=False,
                  axis=-1, fix_empty=True):
    """(out, weights) in float64. The keyword arguments reproduce known mistakes."""
    q, k, v = (t.double().numpy() for t in (q, k, v))
    d = q.shape[-1]
    divisor = {"sqrt": math.sqrt(d), "d": d, "none": 1.0}[scale]
    scores = q @ np.swapaxes(k, -1, -2) / divisor
    if bias is not None:
        scores = scores + bias.double().numpy()
    allowed = None
    if mask is not None:
        allowed = np.broadcast_to(mask.numpy(), scores.shape)
        allowed = ~allowed if invert else allowed
        if zero_score:
            scores = scores * allowed
        elif not after_softmax:
            scores = np.where(allowed, scores, -np.inf)
    with np.errstate(invalid="ignore"):
        top = scores.max(axis, keepdims=True)
        weights = np.exp(scores - np.where(np.isfinite(top), top, 0.0))
        weights = weights / weights.sum(axis, keepdims=True)
    if after_softmax and allowed is not None:
        weights = weights * allowed
    if fix_empty:
        weights = np.nan_to_num(weights, nan=0.0)
    return torch.from_numpy(weights @ v), torch.from_numpy(weights)


def attention_mistakes(q, k, v, mask=None, bias=None, part=1):
    """Outputs (part=0) or weights (part=1) of known mistakes, for closest_mistake."""
    def pick(**kw):
        return ref_attention(q, k, v, mask, bias, **kw)[part]

    named = {
        mistake("scale-by-d", "scores divided by d instead of sqrt(d): the spread of q.k grows like sqrt(d)"):
            pick(scale="d"),
        mistake("not-scaled", "scores not divided by sqrt(d)"): pick(scale="none"),
        mistake("softmax-over-queries", "a softmax over the queries (dim -2); each query's weights must sum to one "
                "over the keys"): pick(axis=-2),
    }
    if mask is not None:
        named.update({
            mistake("mask-inverted", "the mask inverted: True means 'may attend'"): pick(invert=True),
            mistake("mask-after-softmax", "masked weights set to zero after the softmax; mask the scores with -inf "
                    "before it, so the remaining weights still sum to one"): pick(after_softmax=True),
            mistake("mask-after-softmax", "masked scores set to 0 (scores * mask) instead of -inf: a score of 0 "
                    "still gets weight"): pick(zero_score=True),
        })
    return named


def check_attention(submission, q, k, v, what, mask=None, bias=None, **tolerance):
    tolerance = tolerance or F32
    kwargs = {} if mask is None else {"mask": mask}
    if bias is not None:
        kwargs["bias"] = bias
    got = submission.attention(q, k, v, **kwargs)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(f"{what} returned {type(got).__name__}; expected a pair (out, weights)", "not-a-pair")
    out, weights = got
    ref_out, ref_weights = ref_attention(q, k, v, mask, bias)
    hint = closest_mistake(weights, attention_mistakes(q, k, v, mask, bias, part=1))
    if isinstance(weights, torch.Tensor) and bool(torch.isnan(weights.double()).any()):
        hint = Hint("Your weights contain NaN: a query with no allowed key gives softmax(-inf, ..., -inf) = 0/0. "
                    "Give such rows all-zero weights.", "nan-rows")
    expect_close(weights, ref_weights, f"{what} weights", **tolerance, hint=hint)
    expect_close(out, ref_out, f"{what} out", **tolerance, hint="out = weights @ v")


@exercise("intuition.attention", weight=2)
def test_attention_small(submission):
    """is the softmax of q.k / sqrt(d) over the keys, times v"""
    q, k, v = rand(3, 4, seed=1), rand(5, 4, seed=2), rand(5, 2, seed=3)
    check_attention(submission, q, k, v, call_text("attention", q, k, v))


@exercise("intuition.attention", weight=2)
def test_attention_mask(submission):
    """gives masked keys (mask False) weight 0 and renormalises over the allowed ones"""
    q, k, v = rand(4, 8, seed=4), rand(4, 8, seed=5), rand(4, 3, seed=6)
    mask = torch.tensor([[True, False, True, False],
                         [True, True, False, False],
                         [False, True, True, True],
                         [True, True, True, True]])
    check_attention(submission, q, k, v, call_text("attention", q, k, v, mask=mask), mask=mask)


@exercise("intuition.attention", weight=2)
def test_attention_empty_rows(submission):
    """gives a query with no allowed key all-zero weights and output, never NaN"""
    q, k, v = rand(3, 4, seed=7), rand(3, 4, seed=8), rand(3, 2, seed=9)
    mask = torch.tensor([[False, False, False], [True, True, False], [False, False, False]])
    check_attention(submission, q, k, v, call_text("attention", q, k, v, mask=mask), mask=mask)


@exercise("intuition.attention")
def test_attention_bias(submission):
    """adds bias to the scores before the softmax"""
    q, k, v = rand(3, 4, seed=10), rand(4, 4, seed=11), rand(4, 2, seed=12)
    bias = -0.7 * (torch.arange(3)[:, None] - torch.arange(4)[None, :]).abs().float()
    check_attention(submission, q, k, v, call_text("attention", q, k, v, bias=bias), bias=bias)


@exercise("intuition.attention")
def test_attention_batched_heads(submission):
    """broadcasts batch and head axes, with a (T_q, T_k) mask and a (H, T_q, T_k) bias"""
    q, k, v = rand(2, 3, 2, 4, seed=13), rand(2, 3, 5, 4, seed=14), rand(2, 3, 5, 6, seed=15)
    mask = torch.ones(2, 5, dtype=torch.bool).tril(3)
    bias = rand(3, 2, 5, seed=16)
    check_attention(submission, q, k, v, call_text("attention", q, k, v, mask=mask, bias=bias), mask=mask, bias=bias)


@exercise("intuition.attention")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 4e-3), (torch.bfloat16, 3e-2), (torch.float64, 1e-4)])
def test_attention_dtypes(submission, dtype, atol):
    """returns q's dtype, with scores and softmax computed in float32 or wider"""
    # Large, close scores (about 128 +- a few): in half precision they round to steps of 0.125
    # (float16) or 1 (bfloat16), which moves the weights by several percent.
    q = (8.0 + 0.3 * rand(3, 4, seed=17)).to(dtype)
    k = (8.0 + 0.3 * rand(4, 4, seed=18)).to(dtype)
    v = rand(4, 2, seed=19, dtype=dtype)
    what = call_text("attention", q, k, v)
    out, weights = submission.attention(q, k, v)
    expect_dtype(out, dtype, f"{what} out")
    expect_dtype(weights, dtype, f"{what} weights")
    ref_out, ref_weights = ref_attention(q, k, v)
    hint = ""
    if dtype in (torch.float16, torch.bfloat16):
        out32, _ = submission.attention(q.float(), k.float(), v.float())
        if torch.allclose(out32.double(), ref_out, **F32):
            hint = Hint(f"In float32 your result is right, in {str(dtype)[6:]} it is not: the scores are probably "
                        "computed in half precision. Compute q @ k^T and the softmax in float32, then cast the results "
                        "back.", "half-precision-scores")
    expect_close(weights, ref_weights, f"{what} weights", atol=atol, rtol=atol, hint=hint)
    expect_close(out, ref_out, f"{what} out", atol=atol, rtol=atol, hint=hint)


@exercise("intuition.attention")
@pytest.mark.robustness
def test_attention_device(submission):
    """keeps out and weights on q's device"""
    q, k, v = (rand(2, 3, 4, seed=70 + n) for n in range(3))
    mask = torch.tensor([[True, False, False], [True, True, False], [False, False, False]])
    same_on_second_device(submission, submission.attention, q, k, v, mask=mask,
                          hint="Create every helper tensor (masks, fill values) on q.device.")


@exercise("intuition.attention")
@pytest.mark.robustness
def test_attention_not_in_place(submission):
    """leaves its inputs unchanged"""
    mask = torch.tensor([[True, False], [False, False]])
    submission.attention(rand(2, 4, seed=20), rand(2, 4, seed=21), rand(2, 3, seed=22), mask=mask,
                         bias=rand(2, 2, seed=23))
    if submission.mutated_inputs():
        raise Mismatch(f"attention changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("intuition.attention")
@pytest.mark.uses("argument_checks")
def test_attention_bad_shapes(submission):
    """rejects q and k of different widths, and a v without one row per key"""
    q, k, v = rand(2, 4), rand(3, 5), rand(3, 2)
    expect_value_error(submission.attention, q, k, v, mentions=("q", "k"), what=call_text("attention", q, k, v))
    q, k, v = rand(2, 4), rand(3, 4), rand(2, 2)
    expect_value_error(submission.attention, q, k, v, mentions=("v", "k"), what=call_text("attention", q, k, v))


# ---------------------------------------------------------------- causal_mask
def ref_causal(t_q, t_k):
    """Written out: query i sits at position t_k - t_q + i and sees keys up to there."""
    return torch.tensor([[j <= t_k - t_q + i for j in range(t_k)] for i in range(t_q)], dtype=torch.bool)


def causal_mistakes(t_q, t_k):
    ones = torch.ones(t_q, t_k)
    return {
        mistake("queries-at-start", "a mask aligned to the start (torch.tril on a (t_q, t_k) matrix): with a cache "
                "the queries are the LAST t_q positions, so query i sees keys j <= t_k - t_q + i"):
            ones.tril().bool(),
        mistake("mask-strict", "a strictly lower triangle: a query must see its own position (j == i is allowed)"):
            ref_causal(t_q, t_k) & ~(torch.arange(t_k)[None, :] == (torch.arange(t_q)[:, None] + t_k - t_q)),
        mistake("mask-inverted", "the inverted mask (True marking the future): True must mean 'may attend'"):
            ~ref_causal(t_q, t_k),
    }


def check_causal(submission, t_q, t_k=None):
    args = (t_q,) if t_k is None else (t_q, t_k)
    what = call_text("causal_mask", *args)
    got = submission.causal_mask(*args)
    expected = ref_causal(t_q, t_q if t_k is None else t_k)
    hint = closest_mistake(got.float() if isinstance(got, torch.Tensor) else got,
                           {m: v.float() for m, v in causal_mistakes(*expected.shape).items()})
    if isinstance(got, torch.Tensor) and got.dtype != torch.bool and got.shape == expected.shape:
        expect_close(got.double(), expected.double(), what, atol=0, rtol=0, hint=hint)
    expect_equal(got, expected, what, hint=hint)


@exercise("intuition.causal_mask", weight=2)
@pytest.mark.parametrize("t", [1, 4])
def test_causal_square(submission, t):
    """lets query i see keys 0..i"""
    check_causal(submission, t)


@exercise("intuition.causal_mask", weight=2)
@pytest.mark.parametrize("t_q,t_k", [(2, 5), (1, 4), (3, 3)])
def test_causal_cache(submission, t_q, t_k):
    """with fewer queries than keys, places the queries at the last positions"""
    check_causal(submission, t_q, t_k)


@exercise("intuition.causal_mask")
@pytest.mark.robustness
def test_causal_dtype(submission):
    """returns a bool tensor of shape (t_q, t_k)"""
    got = submission.causal_mask(3, 6)
    expect_shape(got, (3, 6), "causal_mask(3, 6)")
    expect_dtype(got, torch.bool, "causal_mask(3, 6)")


@exercise("intuition.causal_mask")
@pytest.mark.uses("argument_checks")
def test_causal_more_queries(submission):
    """rejects t_k < t_q with a ValueError naming t_k or t_q"""
    expect_value_error(submission.causal_mask, 4, 2, mentions=("t_k", "t_q"), what="causal_mask(4, 2)")


@exercise("intuition.causal_mask")
@pytest.mark.uses("argument_checks")
def test_causal_empty(submission):
    """rejects t_q < 1 with a ValueError naming t_q"""
    expect_value_error(submission.causal_mask, 0, mentions="t_q", what="causal_mask(0)")


# ---------------------------------------------------------------- shift_gap
# score_fn must live in the learner's process: the suite defines these there (see remote_function).
SCORE_FUNCTIONS = {
    "relative": ("q @ k.T - 0.25 * (q_pos[:, None] - k_pos[None, :]).abs().to(q.dtype)",
                 lambda q, k, qp, kp: q @ k.T - 0.25 * np.abs(qp[:, None] - kp[None, :])),
    "product": ("q @ k.T - 0.1 * (q_pos[:, None] * k_pos[None, :]).to(q.dtype)",
                lambda q, k, qp, kp: q @ k.T - 0.1 * (qp[:, None] * kp[None, :])),
    "query_only": ("q @ k.T + 0.5 * q_pos[:, None].to(q.dtype) + 0 * k_pos[None, :].to(q.dtype)",
                   lambda q, k, qp, kp: q @ k.T + 0.5 * qp[:, None] + 0 * kp[None, :]),
}


def remote_function(submission, kind):
    """The score function `kind` as a function defined in the learner's process.

    Functions cannot be copied to the learner's process, so the suite defines this one there
    (under a name the learner will not use) and passes a reference to it.
    """
    name = f"_grader_score_{kind}"
    body, _ = SCORE_FUNCTIONS[kind]
    return submission.define(name, f"def {name}(q, k, q_pos, k_pos):\n    return {body}\n", f"score_fn ({body})")


def ref_gap(kind, q, k, positions, shift, reduce="abs_max", shift_keys=True):
    _, fn = SCORE_FUNCTIONS[kind]
    q, k, p = q.double().numpy(), k.double().numpy(), positions.double().numpy()
    before = fn(q, k, p, p)
    after = fn(q, k, p + shift, p + shift if shift_keys else p)
    diff = after - before
    return {"abs_max": np.abs(diff).max(), "signed_max": diff.max(), "mean": np.abs(diff).mean(),
            "max_diff": after.max() - before.max()}[reduce]


def check_gap(submission, kind, q, k, positions, shift, atol=1e-4):
    score_fn = remote_function(submission, kind)
    what = f"shift_gap(score_fn = {SCORE_FUNCTIONS[kind][0]}, {call_text('', q, k, positions, shift)[1:-1]})"
    got = submission.shift_gap(score_fn, q, k, positions, shift)
    if not isinstance(got, (float, int, torch.Tensor)) or (isinstance(got, torch.Tensor) and got.numel() != 1):
        raise AssertionError(f"{what} returned {got!r}; expected a float")
    got = float(got)
    expected = float(ref_gap(kind, q, k, positions, shift))
    if abs(got - expected) <= atol + 1e-4 * abs(expected):
        return
    hint = ""
    for reduce, text in (("signed_max", "the largest signed difference: take the absolute value first"),
                         ("mean", "the mean absolute difference; the gap is the largest one"),
                         ("max_diff", "max(shifted scores) - max(scores); the gap compares the scores entry by entry")):
        if abs(got - ref_gap(kind, q, k, positions, shift, reduce)) <= atol:
            hint = Hint(f"Your value matches {text}.", "gap-reduction")
    if not hint and abs(got - ref_gap(kind, q, k, positions, shift, shift_keys=False)) <= atol:
        hint = Hint("Your value matches shifting the query positions only: shift both q_pos and k_pos.",
                    "gap-queries-only")
    raise failed(f"{what} returned {got:.6g}, expected {expected:.6g}.", hint)


@exercise("intuition.shift_gap", weight=2)
def test_gap_product_score(submission):
    """is the largest absolute change of the scores when every position moves by shift"""
    # The scores change by -0.1 * (shift * (i + j) + shift^2), all negative here.
    check_gap(submission, "product", rand(4, 3, seed=30), rand(4, 3, seed=31), torch.arange(4), 2)


@exercise("intuition.shift_gap")
def test_gap_relative_is_zero(submission):
    """is zero for scores that depend only on q_pos - k_pos"""
    check_gap(submission, "relative", rand(5, 4, seed=32), rand(5, 4, seed=33), torch.tensor([0, 2, 3, 7, 8]), 100)


@exercise("intuition.shift_gap")
def test_gap_negative_shift(submission):
    """handles negative shifts and positions that are not 0..T-1"""
    check_gap(submission, "query_only", rand(3, 2, seed=34), rand(3, 2, seed=35), torch.tensor([5, 1, 9]), -3)


@exercise("intuition.shift_gap")
@pytest.mark.robustness
def test_gap_returns_float(submission):
    """returns a Python float"""
    got = submission.shift_gap(remote_function(submission, "relative"), rand(2, 2, seed=36), rand(2, 2, seed=37),
                               torch.arange(2), 1)
    if not isinstance(got, float):
        raise Mismatch(f"shift_gap returned {type(got).__name__}; expected a Python float (use float(...) or "
                       ".item())", "python-float")


@exercise("intuition.shift_gap")
@pytest.mark.robustness
def test_gap_not_in_place(submission):
    """leaves positions unchanged"""
    submission.shift_gap(remote_function(submission, "product"), rand(3, 2, seed=38), rand(3, 2, seed=39),
                         torch.arange(3), 4)
    if submission.mutated_inputs():
        raise Mismatch(f"shift_gap changed its {', '.join(submission.mutated_inputs())} in place: build "
                       "positions + shift as a new tensor instead of `positions += shift`", "in-place")
