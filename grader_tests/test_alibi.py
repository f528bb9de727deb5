"""Hidden suite, section 7 (ALiBi).

References are independent of solutions/: slopes follow the paper's rule written out for
each head count, attention is float64 NumPy with an explicit mask.
"""
import math

import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (call_text, closest_mistake, expect_close, expect_dtype, expect_shape,
                             expect_value_error)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device

exercise = pytest.mark.exercise
F32 = dict(atol=1e-5, rtol=1e-4)


def ref_slopes(n):
    """Press et al.: 2^(-8i/m) for i = 1..m with m the largest power of two <= n, then the
    odd-numbered slopes of the 2m-head sequence for the remaining n - m heads."""
    m = 1 << (n.bit_length() - 1)
    own = [2.0 ** (-8.0 * i / m) for i in range(1, m + 1)]
    extra = [2.0 ** (-8.0 * i / (2 * m)) for i in range(1, 2 * m + 1, 2)]
    return np.array(own + extra[: n - m])


def naive_slopes(n):
    return np.array([2.0 ** (-8.0 * i / n) for i in range(1, n + 1)])


def ref_bias(slopes, q_pos, k_pos):
    distance = np.abs(np.asarray(q_pos, dtype=np.float64)[:, None] - np.asarray(k_pos, dtype=np.float64)[None, :])
    return torch.from_numpy(-np.asarray(slopes, dtype=np.float64)[:, None, None] * distance)


def ref_attention(q, k, v, causal=True, slopes=None, sign=-1.0, scale=True, aligned_end=True, mask=True):
    q, k, v = (t.double().numpy() for t in (q, k, v))
    heads, t_q, d = q.shape[-3:]
    t_k = k.shape[-2]
    slopes = ref_slopes(heads) if slopes is None else slopes
    k_pos = np.arange(t_k)
    q_pos = k_pos[t_k - t_q:] if aligned_end else k_pos[:t_q]
    bias = sign * slopes[:, None, None] * np.abs(q_pos[:, None] - k_pos[None, :])
    scores = q @ np.swapaxes(k, -1, -2) / (math.sqrt(d) if scale else 1.0) + bias
    if causal and mask:
        scores = np.where(k_pos[None, :] <= q_pos[:, None], scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return torch.from_numpy(weights @ v)



# ---------------------------------------------------------------- alibi_slopes
@exercise("alibi.alibi_slopes")
@pytest.mark.parametrize("n", [1, 2, 8, 16])
def test_slopes_power_of_two(submission, n):
    """gives the geometric sequence 2^(-8/n), 2^(-16/n), ... for a power of two"""
    got = submission.alibi_slopes(n)
    expect_close(got, torch.from_numpy(ref_slopes(n)), f"alibi_slopes({n})", atol=1e-7, rtol=1e-6)


@exercise("alibi.alibi_slopes", weight=3)
@pytest.mark.parametrize("n", [3, 6, 12, 20])
def test_slopes_other_counts(submission, n):
    """follows the paper's rule for head counts that are not a power of two"""
    got = submission.alibi_slopes(n)
    hint = closest_mistake(got, {
        "the power-of-two formula 2^(-8i/n) applied to every n; for other counts the paper takes the slopes of "
        "the largest power of two below n, then every other slope of the next power of two": torch.from_numpy(naive_slopes(n)),
        "the right slopes in sorted order; the paper's order (power-of-two block first, then the extra ones) is what "
        "trained models such as BLOOM use": torch.from_numpy(np.sort(ref_slopes(n))[::-1].copy()),
    }, atol=1e-6)
    expect_close(got, torch.from_numpy(ref_slopes(n)), f"alibi_slopes({n})", atol=1e-7, rtol=1e-6, hint=hint)


@exercise("alibi.alibi_slopes")
def test_slopes_dtype(submission):
    """returns float32 of shape (n_heads,)"""
    got = submission.alibi_slopes(12)
    expect_shape(got, (12,), "alibi_slopes(12)")
    expect_dtype(got, torch.float32, "alibi_slopes(12)")


@exercise("alibi.alibi_slopes")
@pytest.mark.parametrize("n", [0, -2])
@pytest.mark.uses("argument_checks")
def test_slopes_bad_count(submission, n):
    """rejects n_heads < 1 with a ValueError naming n_heads"""
    expect_value_error(submission.alibi_slopes, n, mentions="n_heads", what=f"alibi_slopes({n})")


# ---------------------------------------------------------------- alibi_bias
@exercise("alibi.alibi_bias", weight=2)
def test_bias_small(submission):
    """is -slope times the distance between query and key"""
    slopes, pos = torch.tensor([0.5, 0.25]), torch.arange(3)
    what = call_text("alibi_bias", slopes, pos, pos)
    got = submission.alibi_bias(slopes, pos, pos)
    signed = -slopes.double()[:, None, None] * (pos[:, None] - pos[None, :]).double()
    hint = closest_mistake(got, {
        "a positive bias: far keys must be penalised, so the bias is -slope * distance": -ref_bias(slopes, pos, pos),
        "a signed distance (i - j) without the absolute value": signed,
        "the signed distance (j - i)": -signed,
    })
    expect_close(got, ref_bias(slopes, pos, pos), what, **F32, hint=hint)


@exercise("alibi.alibi_bias")
def test_bias_decoding_rows(submission):
    """handles fewer queries than keys at given positions"""
    slopes, q_pos, k_pos = torch.tensor([0.5, 0.125, 0.03125]), torch.tensor([6, 7]), torch.arange(8)
    what = call_text("alibi_bias", slopes, q_pos, k_pos)
    got = submission.alibi_bias(slopes, q_pos, k_pos)
    expect_close(got, ref_bias(slopes, q_pos, k_pos), what, **F32)


@exercise("alibi.alibi_bias")
def test_bias_dtype_follows_slopes(submission):
    """returns the dtype of the slopes it reads"""
    for dtype in (torch.float32, torch.float64):
        slopes = torch.tensor([0.5, 0.25], dtype=dtype)
        got = submission.alibi_bias(slopes, torch.arange(2), torch.arange(3))
        expect_dtype(got, dtype, call_text("alibi_bias", slopes, torch.arange(2), torch.arange(3)))


@exercise("alibi.alibi_bias")
def test_bias_not_in_place(submission):
    """leaves its inputs unchanged"""
    submission.alibi_bias(torch.tensor([0.5, 0.25]), torch.arange(3), torch.arange(3))
    if submission.mutated_inputs():
        raise AssertionError(f"alibi_bias changed its {', '.join(submission.mutated_inputs())} in place")


# ---------------------------------------------------------------- alibi_attention
def attention_mistakes(q, k, v, causal):
    return {
        "no causal mask: the symmetric bias -m|i-j| alone still lets queries see later keys; apply the mask "
        "separately": ref_attention(q, k, v, causal=causal, mask=False),
        "a bias with the wrong sign (+m * distance)": ref_attention(q, k, v, causal=causal, sign=1.0),
        "scores not divided by sqrt(d)": ref_attention(q, k, v, causal=causal, scale=False),
        "the power-of-two slope formula used for every head count":
            ref_attention(q, k, v, causal=causal, slopes=naive_slopes(q.shape[-3])),
        "queries placed at the first positions; with fewer queries than keys they are the last T_q positions":
            ref_attention(q, k, v, causal=causal, aligned_end=False),
    }


def expect_attention(submission, got, q, k, v, what, causal=True, **tolerance):
    """Right if it matches the paper's slopes, or the learner's own alibi_slopes (the contract
    says attention takes its slopes from alibi_slopes, so a slopes mistake is not charged twice)."""
    expected = ref_attention(q, k, v, causal=causal)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and submission.defines("alibi_slopes"):
        try:
            own = submission.alibi_slopes(q.shape[-3]).double().numpy()
        except Exception:  # noqa: BLE001 - their slopes fail: judge against the paper's alone
            own = None
        if own is not None and own.shape == (q.shape[-3],):
            mine = ref_attention(q, k, v, causal=causal, slopes=own)
            if torch.allclose(got.double(), mine, **tolerance):
                return
    hint = closest_mistake(got, attention_mistakes(q, k, v, causal))
    expect_close(got, expected, what, **tolerance, hint=hint)


@exercise("alibi.alibi_attention", weight=2)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.uses("bidirectional", when={"causal": False})
def test_attention_small(submission, causal):
    """adds the ALiBi bias to the scores (and masks the future when causal)"""
    q, k, v = rand(2, 4, 4, seed=1), rand(2, 4, 4, seed=2), rand(2, 4, 3, seed=3)
    what = call_text("alibi_attention", q, k, v, causal=causal)
    got = submission.alibi_attention(q, k, v, causal=causal)
    expect_attention(submission, got, q, k, v, what, causal=causal, **F32)


@exercise("alibi.alibi_attention", weight=2)
def test_attention_decoding(submission):
    """treats fewer queries as the last positions (cached decoding)"""
    q, k, v = rand(6, 2, 8, seed=4), rand(6, 7, 8, seed=5), rand(6, 7, 5, seed=6)
    what = call_text("alibi_attention", q, k, v)
    got = submission.alibi_attention(q, k, v)
    expect_attention(submission, got, q, k, v, what, **F32)


@exercise("alibi.alibi_attention")
def test_attention_batched(submission):
    """works with a batch dimension and a head count that is not a power of two"""
    q, k, v = rand(2, 6, 5, 8, seed=7), rand(2, 6, 5, 8, seed=8), rand(2, 6, 5, 8, seed=9)
    what = call_text("alibi_attention", q, k, v)
    got = submission.alibi_attention(q, k, v)
    expect_attention(submission, got, q, k, v, what, **F32)


@exercise("alibi.alibi_attention")
def test_attention_half(submission):
    """keeps float16 inputs in float16, computing in float32"""
    q, k, v = (rand(4, 6, 8, seed=s, dtype=torch.float16) for s in (10, 11, 12))
    what = call_text("alibi_attention", q, k, v)
    got = submission.alibi_attention(q, k, v)
    expect_dtype(got, torch.float16, what)
    expect_attention(submission, got, q, k, v, what, atol=5e-3, rtol=5e-3)


@exercise("alibi.alibi_attention")
def test_attention_device_and_inputs(submission):
    """keeps the output on the input's device and leaves inputs unchanged"""
    same_on_second_device(submission, submission.alibi_attention, rand(2, 3, 4, seed=60), rand(2, 5, 4, seed=61),
                          rand(2, 5, 4, seed=62), hint="Create positions, slopes and masks on q.device.")
    submission.alibi_attention(rand(2, 3, 4), rand(2, 3, 4), rand(2, 3, 4))
    if submission.mutated_inputs():
        raise AssertionError(f"alibi_attention changed its {', '.join(submission.mutated_inputs())} in place")


@exercise("alibi.alibi_attention")
@pytest.mark.uses("argument_checks")
def test_attention_more_queries_than_keys(submission):
    """rejects more queries than keys with a ValueError naming q or k"""
    q, k = rand(2, 5, 4), rand(2, 3, 4)
    expect_value_error(submission.alibi_attention, q, k, k, mentions=("q", "k"), what=call_text("alibi_attention", q, k, k))
