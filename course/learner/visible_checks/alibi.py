"""Visible checks for section 7, ALiBi (``check("alibi")`` in notebook 07).

Expected values are derived here from the paper's definitions: the slope ladder
2^(-8(h+1)/n) and its rule for other head counts, the bias -m|i - j|, and attention
written out in float64.
"""
from __future__ import annotations

import math

import torch

from course.checking import (
    call_text,
    closest_mistake,
    expect_close,
    expect_dtype,
    expect_shape,
    expect_value_error,
    left_padded_batch,
)
from course.checking import seeded_randn as _randn
from course.learner.visible_checks import visible
from course.learner.visible_checks.decoding import (call_pair, expect_cache_and_mask_length,
                                                    expect_decoding_matches_full_pass)


def _ladder(n):
    """The paper's slopes for a power of two n: start 2^(-8/n), ratio 2^(-8/n)."""
    return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]


def _paper_slopes(n):
    """The paper's rule, spelled out: the ladder of the power of two 2^a <= n, then every
    other slope (first one included) of the ladder for 2^(a+1), until there are n."""
    low = 1
    while 2 * low <= n:
        low *= 2
    return _ladder(low) + _ladder(2 * low)[0::2][: n - low]


def _reference_attention(q, k, v, slopes, causal):
    """ALiBi attention written out in float64; queries are the last T_q of the T_k positions."""
    q, k, v = q.double(), k.double(), v.double()
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    q_pos = torch.arange(t_k - t_q, t_k, dtype=torch.float64)
    k_pos = torch.arange(t_k, dtype=torch.float64)
    offset = q_pos[:, None] - k_pos[None, :]
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    scores = scores - torch.tensor(slopes, dtype=torch.float64)[:, None, None] * offset.abs()
    if causal:
        scores = scores.masked_fill(offset < 0, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _own_slopes(ns, n):
    """The learner's alibi_slopes(n) as a list, when it runs and gives n numbers other than the
    paper's; else None. Attention takes its slopes from alibi_slopes, so (as in grading) a slopes
    mistake is charged to alibi_slopes alone, not to the attention built on it."""
    try:
        own = ns.alibi_slopes(n)
        own = torch.as_tensor(own, dtype=torch.float64).reshape(-1)
    except Exception:  # noqa: BLE001 - not written, or raises: judge against the paper's slopes alone
        return None
    if own.shape != (n,) or torch.allclose(own, torch.tensor(_paper_slopes(n), dtype=torch.float64)):
        return None
    return own.tolist()


def _expect_attention(ns, got, expected_for, n_heads, what, hint="", **tolerance):
    """`got` must equal expected_for(slopes) with the paper's slopes, or with the learner's own."""
    own = _own_slopes(ns, n_heads)
    if own is not None and isinstance(got, torch.Tensor):
        mine = expected_for(own)
        if got.shape == mine.shape and torch.allclose(got.double(), mine, **tolerance):
            return
        hint = (hint + " " if hint else "") + (
            f"(Your alibi_slopes({n_heads}) is not the paper's either: the alibi_slopes check says why.)")
    expect_close(got, expected_for(_paper_slopes(n_heads)), what, hint=hint, **tolerance)


def _decay_weights(slopes, t, causal):
    """Attention weights when all content scores are equal: proportional to exp(-m |i - j|),
    over j <= i if causal (each row renormalised)."""
    i = torch.arange(t, dtype=torch.float64)
    offset = i[:, None] - i[None, :]
    raw = torch.exp(-torch.tensor(slopes, dtype=torch.float64)[:, None, None] * offset.abs())
    if causal:
        raw = raw * (offset >= 0)
    return raw / raw.sum(-1, keepdim=True)


# ---------------------------------------------------------------- alibi_slopes

@visible("alibi.alibi_slopes", "powers of two: the ladder 2^(-8/n), 2^(-16/n), ..., 2^(-8), float32")
def _(ns):
    for n in (1, 4, 8):
        what = call_text("alibi_slopes", n)
        got = ns.alibi_slopes(n)
        expect_dtype(got, torch.float32, what)
        expect_close(got, torch.tensor(_ladder(n)), what, atol=0, rtol=1e-6)


@visible("alibi.alibi_slopes", "6 and 12 heads: power-of-two slopes, then every other slope of the next ladder")
def _(ns):
    # n = 6: the 4-head ladder 2^-2, 2^-4, 2^-6, 2^-8, then from the 8-head ladder 2^-1 .. 2^-8
    # every other slope from the first (2^-1, 2^-3, 2^-5, 2^-7), the first 6 - 4 of them.
    # n = 12: the 8-head ladder, then 4 of 2^-0.5, 2^-1.5, 2^-2.5, ... from the 16-head ladder.
    for n in (6, 12):
        what = call_text("alibi_slopes", n)
        expected = torch.tensor(_paper_slopes(n))
        got = ns.alibi_slopes(n)
        hint = closest_mistake(got, {
            ("alibi-power-of-two", "the shortcut 2^(-8(h+1)/n), which is the paper's rule only when n is a power "
                                   "of two"): torch.tensor(_ladder(n)),
            ("alibi-sorted", "the paper's slopes sorted from steep to flat; the paper appends the extra slopes at "
                             "the end"): expected.sort(descending=True).values,
        })
        expect_close(got, expected, what, atol=0, rtol=1e-6, hint=hint)


@visible("alibi.alibi_slopes", "n_heads < 1 is a ValueError naming n_heads")
def _(ns):
    for n in (0, -2):
        expect_value_error(ns.alibi_slopes, n, mentions="n_heads", what=call_text("alibi_slopes", n))


# ---------------------------------------------------------------- alibi_bias

@visible("alibi.alibi_bias", "entry (h, i, j) is -slopes_h * |q_pos_i - k_pos_j|, also for T_q != T_k")
def _(ns):
    slopes = torch.tensor([0.5, 0.125])
    q_pos, k_pos = torch.tensor([3, 5]), torch.arange(6)
    expected = torch.tensor([[[-s * abs(i - j) for j in k_pos.tolist()] for i in q_pos.tolist()]
                             for s in slopes.tolist()])
    what = call_text("alibi_bias", slopes, q_pos, k_pos)
    got = ns.alibi_bias(slopes, q_pos, k_pos)
    expect_dtype(got, torch.float32, what)
    signed = -slopes[:, None, None] * (q_pos[:, None] - k_pos[None, :]).float()
    hint = closest_mistake(got, {
        ("alibi-signed-distance", "-m (i - j) without the absolute value (positive for keys after the query)"): signed,
        ("alibi-bias-sign", "+m |i - j| (the bias must be a penalty, i.e. negative)"): -expected,
    })
    expect_close(got, expected, what, hint=hint)


@visible("alibi.alibi_bias", "relative: shifting all positions changes nothing; symmetric and <= 0")
def _(ns):
    slopes = torch.tensor([0.25, 1 / 64])
    pos = torch.arange(5)
    base = ns.alibi_bias(slopes, pos, pos)
    what = call_text("alibi_bias", slopes, pos, pos)
    expect_shape(base, (2, 5, 5), what)
    shifted = ns.alibi_bias(slopes, pos + 1000, pos + 1000)
    expect_close(shifted, base, call_text("alibi_bias", slopes, pos + 1000, pos + 1000)
                 + " compared with the same call at positions 0..4", atol=1e-6, rtol=0)
    expect_close(base.transpose(-1, -2), base, what + " transposed over (i, j)", atol=0, rtol=0,
                 hint="Use the absolute distance |q_pos[i] - k_pos[j]|.")
    expect_close(base.clamp(max=0), base, what + " (every entry should be <= 0)", atol=0, rtol=0)


@visible("alibi.alibi_bias", "keeps the dtype of slopes (float64 in, float64 out)")
def _(ns):
    slopes = torch.tensor([0.5, 1 / 3], dtype=torch.float64)
    q_pos, k_pos = torch.tensor([7]), torch.arange(4)
    what = call_text("alibi_bias", slopes, q_pos, k_pos)
    got = ns.alibi_bias(slopes, q_pos, k_pos)
    expect_dtype(got, torch.float64, what)
    expected = torch.tensor([[[-s * (7 - j) for j in range(4)]] for s in slopes.tolist()], dtype=torch.float64)
    expect_close(got, expected, what, atol=1e-6, rtol=1e-6)  # float64 held to float32 accuracy


# ---------------------------------------------------------------- alibi_attention

@visible("alibi.alibi_attention", "with q = 0 only the bias acts: weights decay like exp(-m|i-j|), causal or not")
def _(ns):
    # With v = identity, the output rows are the attention weights.
    H, T, d = 4, 5, 3
    slopes = _ladder(H)                                   # 1/4, 1/16, 1/64, 1/256
    q, k = torch.zeros(H, T, d), _randn(H, T, d)
    v = torch.eye(T).expand(H, T, T).clone()
    for causal in (True, False):
        what = call_text("alibi_attention", q, k, v, causal=causal) + " (v = identity, so output = weights)"
        got = ns.alibi_attention(q, k, v, causal=causal)
        other = _decay_weights(slopes, T, not causal)
        no_bias = _decay_weights([0.0] * H, T, causal)
        hint = closest_mistake(got, {
            (("alibi-no-mask", "attention without the causal mask") if causal
             else ("alibi-causal-ignored", "attention with a causal mask (causal=False has none)")): other,
            ("alibi-no-bias", "attention without the ALiBi bias"): no_bias,
        })
        _expect_attention(ns, got, lambda m: _decay_weights(m, T, causal), H, what, hint, atol=1e-5, rtol=1e-4)


@visible("alibi.alibi_attention", "equals softmax(q k^T / sqrt(d) - m|i-j|, causal mask) v with batch dims")
def _(ns):
    B, H, T, d, d_v = 2, 4, 6, 8, 3
    q, k, v = _randn(B, H, T, d, seed=1), _randn(B, H, T, d, seed=2), _randn(B, H, T, d_v, seed=3)
    what = call_text("alibi_attention", q, k, v)
    got = ns.alibi_attention(q, k, v)
    hint = closest_mistake(got, {
        ("not-scaled", "no division by sqrt(d)"): _reference_attention(q * math.sqrt(d), k, v, _ladder(H), causal=True),
    })
    _expect_attention(ns, got, lambda m: _reference_attention(q, k, v, m, causal=True), H, what, hint,
                      atol=1e-5, rtol=1e-4)


@visible("alibi.alibi_attention", "decoding: T_q < T_k queries sit at the last T_q positions")
def _(ns):
    H, T, d = 2, 7, 4
    q_all, k, v = (_randn(H, T, d, seed=s) for s in (4, 5, 6))
    for t_q in (1, 3):
        q = q_all[:, -t_q:]
        what = call_text("alibi_attention", q, k, v)
        got = ns.alibi_attention(q, k, v)
        # the mistake: queries numbered 0 .. T_q-1 as if they were the first tokens
        first = _reference_attention(q, k[:, :t_q], v[:, :t_q], _ladder(H), causal=True)
        hint = closest_mistake(got, {("queries-at-start", "queries placed at positions 0..T_q-1 instead of the last "
                                                          "T_q"): first})
        _expect_attention(ns, got, lambda m: _reference_attention(q, k, v, m, causal=True), H, what, hint,
                          atol=1e-5, rtol=1e-4)


@visible("alibi.alibi_attention", "bfloat16 in, bfloat16 out; more queries than keys is a ValueError")
def _(ns):
    H, T, d = 2, 4, 8
    q, k, v = (_randn(H, T, d, seed=s).bfloat16() for s in (7, 8, 9))
    what = call_text("alibi_attention", q, k, v)
    got = ns.alibi_attention(q, k, v)
    expect_dtype(got, torch.bfloat16, what)
    _expect_attention(ns, got.double(), lambda m: _reference_attention(q, k, v, m, causal=True), H, what,
                      atol=2e-2, rtol=2e-2)
    q_long = _randn(H, T + 1, d, seed=10)
    k32, v32 = k.float(), v.float()
    expect_value_error(ns.alibi_attention, q_long, k32, v32, mentions=("q", "k"),
                       what=call_text("alibi_attention", q_long, k32, v32))


# ---------------------------------------------------------------- cached_alibi_attention

def _padded(pads, t, seed):
    """q, k, v (B, 3 heads, t, 4 or 3) and a 0/1 mask with pads[b] padding tokens on the left of row b."""
    return left_padded_batch(pads, t, heads=3, d=4, d_v=3, seed=seed)


@visible("alibi.cached_alibi_attention", "a left-padded row equals ALiBi attention over the row alone")
def _(ns):
    q, k, v, mask = _padded((2, 0), 5, seed=11)
    what = call_text("cached_alibi_attention", q, k, v, mask) + " (row 0 has 2 padding tokens)"
    out, _ = call_pair(ns.cached_alibi_attention, what, q, k, v, mask)
    for b, pad in ((0, 2), (1, 0)):
        _expect_attention(ns, out[b, :, pad:],
                          lambda m: _reference_attention(q[b, :, pad:], k[b, :, pad:], v[b, :, pad:], m, causal=True),
                          3, f"{what}, row {b}, its {5 - pad} real tokens", atol=1e-5, rtol=1e-4,
                          hint="Number each row's real tokens 0, 1, 2, ... from the mask and leave padding keys out.")


@visible("alibi.cached_alibi_attention", "prefill, then one token per call with the returned cache, equals one full pass")
def _(ns):
    expect_decoding_matches_full_pass(
        ns.cached_alibi_attention, *_padded((0, 3, 1), 7, seed=21), prefill=4, atol=1e-5, rtol=1e-4,
        hint="Number queries and keys the same way in every call: real tokens before each one.")


@visible("alibi.cached_alibi_attention", "the cache grows by T_new; a mask of the wrong length is a ValueError")
def _(ns):
    expect_cache_and_mask_length(ns.cached_alibi_attention, "cached_alibi_attention", *_padded((1, 0), 3, seed=31))
