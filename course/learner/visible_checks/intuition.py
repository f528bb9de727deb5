"""Visible checks for section 1, Intuition (notebook 01_intuition)."""
from __future__ import annotations

import math

import torch

from course.checking import call_text, expect_close, expect_dtype, expect_equal, expect_value_error
from course.checking import seeded_randn
from course.learner.visible_checks import visible


def _two_keys():
    """One query, two keys: the first key scores q.k = 2, the second 0; v is the identity.

    With d = 4 the scaled score of key 0 is 2 / sqrt(4) = 1, so the softmax gives
    weights (e / (e + 1), 1 / (e + 1)), and out = weights @ I = weights.
    """
    q = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    k = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    v = torch.eye(2)
    e = math.e
    return q, k, v, torch.tensor([[e / (e + 1), 1 / (e + 1)]])


@visible("intuition.attention", "softmax of q.k / sqrt(d) over the keys")
def _(ns):
    q, k, v, expected = _two_keys()
    what = call_text("attention", q, k, v)
    out, weights = ns.attention(q, k, v)
    expect_close(weights, expected, f"{what} weights", atol=1e-5,
                 hint="The score is q.k / sqrt(d), here 2 / sqrt(4) = 1; the softmax runs over the keys (last axis).")
    expect_close(out, expected, f"{what} out", atol=1e-5, hint="out = weights @ v, and v is the identity here.")


@visible("intuition.attention", "mask True = may attend; masked keys get weight 0")
def _(ns):
    q, k, v, _ = _two_keys()
    mask = torch.tensor([[False, True]])  # the query may only see key 1
    what = call_text("attention", q, k, v, mask=mask)
    out, weights = ns.attention(q, k, v, mask=mask)
    # Only key 1 is allowed, so it takes all the weight and out is v[1].
    expect_close(weights, torch.tensor([[0.0, 1.0]]), f"{what} weights",
                 hint="True in the mask means 'may attend'; a False key must end with weight exactly 0.")
    expect_close(out, v[1:2], f"{what} out")


@visible("intuition.attention", "a query with no allowed key gets zeros, not NaN")
def _(ns):
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([[False, False], [True, True]])  # query 0 may see nothing
    what = call_text("attention", q, k, v, mask=mask)
    out, weights = ns.attention(q, k, v, mask=mask)
    hint = "softmax over a row of -inf is 0/0 = NaN; set such rows to zero weights."
    expect_close(weights[0], torch.zeros(2), f"{what} weights of query 0", hint=hint)
    expect_close(out[0], torch.zeros(2), f"{what} out of query 0", hint=hint)
    # Query 1 is unaffected: its weights still sum to one.
    expect_close(weights[1].sum(), torch.tensor(1.0), f"{what} sum of the weights of query 1")


@visible("intuition.attention", "bias is added to the scores before the softmax")
def _(ns):
    q, k = torch.zeros(1, 3), torch.zeros(3, 3)  # every q.k is 0: the scores are the bias alone
    v = torch.eye(3)
    bias = torch.tensor([[0.0, -1.0, -2.0]])
    exp = [math.exp(b) for b in bias[0].tolist()]
    expected = torch.tensor([[e / sum(exp) for e in exp]])
    what = call_text("attention", q, k, v, bias=bias)
    out, weights = ns.attention(q, k, v, bias=bias)
    expect_close(weights, expected, f"{what} weights", hint="scores = q k^T / sqrt(d) + bias, then softmax.")
    half_q = ns.attention(q.half(), k.half(), v.half(), bias=bias)[0]
    expect_dtype(half_q, torch.float16, call_text("attention", q.half(), k.half(), v.half(), bias=bias) + " out")


def _causal_by_rule(t_q, t_k):
    """The mask written out entry by entry: query i sits at position t_k - t_q + i."""
    return torch.tensor([[j <= t_k - t_q + i for j in range(t_k)] for i in range(t_q)])


@visible("intuition.causal_mask", "square mask: query i sees keys 0..i")
def _(ns):
    what = call_text("causal_mask", 4)
    expect_equal(ns.causal_mask(4), _causal_by_rule(4, 4), what,
                 hint="True on and below the diagonal (a bool tensor).")


@visible("intuition.causal_mask", "fewer queries than keys: queries are the last positions")
def _(ns):
    what = call_text("causal_mask", 2, 5)
    expect_equal(ns.causal_mask(2, 5), _causal_by_rule(2, 5), what,
                 hint="With a cache, query i sits at position t_k - t_q + i: the last query sees every key.")


@visible("intuition.causal_mask", "t_k < t_q is a ValueError naming t_k")
def _(ns):
    expect_value_error(ns.causal_mask, 3, 2, mentions=("t_k", "t_q"), what=call_text("causal_mask", 3, 2))


def _content(q, k):
    return q @ k.T


@visible("intuition.shift_gap", "zero for scores that depend only on q_pos - k_pos")
def _(ns):
    def relative(q, k, q_pos, k_pos):
        return _content(q, k) - 0.5 * (q_pos[:, None] - k_pos[None, :]).abs().float()

    q, k = seeded_randn(4, 3, seed=1), seeded_randn(4, 3, seed=2)
    positions = torch.arange(4)
    gap = ns.shift_gap(relative, q, k, positions, 5)
    what = call_text("shift_gap", "relative_score", q, k, positions, 5)
    if not isinstance(gap, float):
        raise AssertionError(f"{what} returned {type(gap).__name__}, expected a Python float (use float(...))")
    expect_close(torch.tensor(gap), torch.tensor(0.0), what, atol=1e-5,
                 hint="shifting both q_pos and k_pos by the same amount leaves q_pos - k_pos unchanged.")


@visible("intuition.shift_gap", "equals the change of an absolute score")
def _(ns):
    def absolute(q, k, q_pos, k_pos):  # adds the query's position to each of its scores
        return _content(q, k) + q_pos[:, None].float()

    q, k = seeded_randn(3, 2, seed=1), seeded_randn(3, 2, seed=2)
    positions = torch.arange(3)
    for shift in (2, -3):
        # Every score grows by exactly `shift`, so the largest absolute change is |shift|.
        gap = ns.shift_gap(absolute, q, k, positions, shift)
        expect_close(torch.tensor(float(gap)), torch.tensor(float(abs(shift))),
                     call_text("shift_gap", "absolute_score", q, k, positions, shift), atol=1e-5,
                     hint="the largest ABSOLUTE difference between shifted and unshifted scores.")


@visible("intuition.shift_gap", "does not modify positions")
def _(ns):
    positions = torch.arange(3)
    q, k = seeded_randn(3, 2, seed=1), seeded_randn(3, 2, seed=2)
    ns.shift_gap(lambda q, k, q_pos, k_pos: _content(q, k) + q_pos[:, None].float(), q, k, positions, 4)
    expect_equal(positions, torch.arange(3), "positions after " + call_text("shift_gap", "score_fn", q, k, positions, 4),
                 hint="build positions + shift as a new tensor; `positions += shift` changes the caller's tensor.")
