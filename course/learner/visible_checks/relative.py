"""Visible checks for section 5, relative positions (Shaw et al., T5).

Every expected value is derived here: T5 bucket ids from the bucketing rule written out for
one side (exact range, log range, cap), Shaw scores and outputs from inputs built so that
each term can be read off by hand (zero keys, rel_k rows that store their own offset).
"""
from __future__ import annotations

import math

import torch

from course.checking import (
    call_text,
    expect_close,
    expect_dtype,
    expect_equal,
    expect_shape,
    expect_tensor,
    expect_value_error,
)
from course.learner.visible_checks import visible


def _clipped_offsets(t_q, t_k, K):
    """clip(j - i, -K, K) with query i at absolute position t_k - t_q + i (written with loops)."""
    rows = []
    for i in range(t_q):
        pos = t_k - t_q + i
        rows.append([max(-K, min(K, j - pos)) for j in range(t_k)])
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- t5_relative_position_bucket

@visible("relative.t5_relative_position_bucket", "small offsets get one bucket each, per side")
def _(ns):
    # Bidirectional, 32 buckets: 16 per side, the first 16 // 2 = 8 distances are exact.
    # Keys at or before the query (r <= 0) use buckets 0..15, keys after it (r > 0) use 16..31.
    rel = torch.arange(-7, 8)
    what = call_text("t5_relative_position_bucket", rel)
    got = expect_tensor(ns.t5_relative_position_bucket(rel), what)
    expected = torch.tensor([-r if r <= 0 else 16 + r for r in range(-7, 8)])
    expect_equal(got, expected, what, hint="Bidirectional: bucket |r| for r <= 0, num_buckets/2 + r for r > 0 "
                                            "(relative_position is key - query).")
    # Causal, 32 buckets: one side of 32, 16 exact; keys after the query all share bucket 0.
    rel = torch.tensor([-15, -3, 0, 2, 40])
    what = call_text("t5_relative_position_bucket", rel, bidirectional=False)
    expect_equal(ns.t5_relative_position_bucket(rel, bidirectional=False), torch.tensor([15, 3, 0, 0, 0]), what,
                 hint="Causal: bucket -r for keys before the query, 0 for r >= 0; all num_buckets on one side.")


@visible("relative.t5_relative_position_bucket", "larger distances are log-spaced, capped at the last bucket")
def _(ns):
    # Bidirectional defaults, keys before the query: side n = 16, exact e = 8, max_distance 128.
    # bucket = e + floor(ln(a/e) / ln(128/e) * (n - e)), at most n - 1. Distances chosen away
    # from bucket edges, so float32 and float64 agree.
    n, e, md = 16, 8, 128
    dist = [10, 20, 45, 100, 127, 128, 500, 100000]
    expected = [min(e + int(math.log(a / e) / math.log(md / e) * (n - e)), n - 1) for a in dist]
    rel = -torch.tensor(dist)
    what = call_text("t5_relative_position_bucket", rel)
    expect_equal(ns.t5_relative_position_bucket(rel), torch.tensor(expected), what,
                 hint="Distances >= num_buckets/4 use e + int(log(a/e)/log(max_distance/e)*(n-e)), capped at n-1.")
    # The same distances after the query land in the upper half: shifted by n.
    rel = torch.tensor(dist)
    what = call_text("t5_relative_position_bucket", rel)
    expect_equal(ns.t5_relative_position_bucket(rel), torch.tensor(expected) + n, what,
                 hint="Keys after the query use the same rule, shifted by num_buckets // 2.")


@visible("relative.t5_relative_position_bucket", "other num_buckets and max_distance; int64, any shape")
def _(ns):
    # Causal, 8 buckets, max_distance 32: n = 8, e = 4; distance 32 and beyond -> 7.
    n, e, md = 8, 4, 32
    dist = torch.tensor([[0, 3, 4, 6], [9, 20, 32, 1000]])
    expected = [[a if a < e else min(e + int(math.log(a / e) / math.log(md / e) * (n - e)), n - 1) for a in row]
                for row in dist.tolist()]
    rel = -dist
    what = call_text("t5_relative_position_bucket", rel, bidirectional=False, num_buckets=8, max_distance=32)
    got = expect_tensor(ns.t5_relative_position_bucket(rel, bidirectional=False, num_buckets=8, max_distance=32),
                        what)
    expect_dtype(got, torch.int64, what)
    expect_equal(got, torch.tensor(expected), what,
                 hint="Use the num_buckets and max_distance you are given; the output keeps the input's shape.")


# ---------------------------------------------------------------- t5_relative_bias

@visible("relative.t5_relative_bias", "head h, query i, key j reads table row bucket(k_pos j - q_pos i), column h")
def _(ns):
    # table[b, h] = 100 h + b, so each entry tells which bucket and head it came from.
    # Offsets k - q lie in -2..4, all exact: bucket -r for r <= 0, 16 + r for r > 0.
    H = 3
    table = torch.arange(32, dtype=torch.float32)[:, None] + 100.0 * torch.arange(H)
    q_pos, k_pos = torch.arange(3), torch.arange(5)
    what = call_text("t5_relative_bias", table, q_pos, k_pos)
    got = expect_tensor(ns.t5_relative_bias(table, q_pos, k_pos), what)
    expect_shape(got, (H, 3, 5), what)
    expected = torch.empty(H, 3, 5)
    for h in range(H):
        for i in range(3):
            for j in range(5):
                r = j - i
                expected[h, i, j] = 100 * h + (-r if r <= 0 else 16 + r)
    expect_close(got, expected, what, atol=0, rtol=0,
                 hint="Use relative_position = k_pos(j) - q_pos(i), key minus query, and put the head axis first.")


@visible("relative.t5_relative_bias", "keeps the table's dtype; passes bidirectional and max_distance on")
def _(ns):
    # Causal with 8 buckets and max_distance 16: n = 8, e = 4, so distances 16 and beyond sit in
    # bucket 7 and keys after the query in bucket 0. table[b, 0] = b reads the bucket back.
    table = torch.arange(8, dtype=torch.float64)[:, None]
    q_pos, k_pos = torch.tensor([40]), torch.tensor([0, 20, 24, 38, 40, 45])
    what = call_text("t5_relative_bias", table, q_pos, k_pos, bidirectional=False, max_distance=16)
    got = expect_tensor(ns.t5_relative_bias(table, q_pos, k_pos, bidirectional=False, max_distance=16), what)
    expect_dtype(got, torch.float64, what)
    dist = [40 - p for p in k_pos.tolist()]
    buckets = [0 if a <= 0 else a if a < 4 else min(4 + int(math.log(a / 4) / math.log(16 / 4) * 4), 7) for a in dist]
    expect_close(got, torch.tensor(buckets, dtype=torch.float64).reshape(1, 1, 6), what, atol=0, rtol=0,
                 hint="num_buckets is table.shape[0]; pass bidirectional and max_distance to the bucketing.")


@visible("relative.t5_relative_bias", "shifting every position leaves the bias unchanged")
def _(ns):
    g = torch.Generator().manual_seed(0)
    table = torch.randn(32, 2, generator=g)
    q_pos, k_pos = torch.arange(4), torch.arange(9)
    base = ns.t5_relative_bias(table, q_pos, k_pos)
    shifted = ns.t5_relative_bias(table, q_pos + 1000, k_pos + 1000)
    expect_close(shifted, base, "t5_relative_bias with every position shifted by 1000", atol=0, rtol=0,
                 hint="Only the offset k_pos(j) - q_pos(i) may matter.")


# ---------------------------------------------------------------- shaw_relative_scores

@visible("relative.shaw_relative_scores", "zero rel_k gives plain scaled dot products")
def _(ns):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    rel_k = torch.zeros(5, 4)
    what = call_text("shaw_relative_scores", q, k, rel_k, 2)
    got = expect_tensor(ns.shaw_relative_scores(q, k, rel_k, 2), what)
    expect_shape(got, (2, 3, 5), what)
    expect_close(got, q @ k.transpose(-1, -2) / math.sqrt(4), what, atol=1e-5,
                 hint="The content term is q_i . k_j / sqrt(d).")


@visible("relative.shaw_relative_scores", "uses rel_k row clip(j - i, -K, K) + K, queries at the end")
def _(ns):
    # k = 0 and q_i = (1, 0, 0, 0): the score is rel_k[row, 0] / sqrt(d). Row r stores r - K,
    # i.e. the clipped offset it stands for, so the expected score is clip(j - i, -K, K) / 2.
    K, d = 2, 4
    rel_k = torch.zeros(2 * K + 1, d)
    rel_k[:, 0] = torch.arange(-K, K + 1, dtype=torch.float32)
    for t_q, t_k in ((6, 6), (2, 6)):
        q = torch.zeros(t_q, d)
        q[:, 0] = 1.0
        k = torch.zeros(t_k, d)
        what = call_text("shaw_relative_scores", q, k, rel_k, K)
        got = expect_tensor(ns.shaw_relative_scores(q, k, rel_k, K), what)
        expect_close(got, _clipped_offsets(t_q, t_k, K) / math.sqrt(d), what, atol=1e-5,
                     hint="Offset j - i (key minus query), clipped to [-K, K], shifted by +K to index rel_k; "
                          "with fewer queries than keys, query i sits at T_k - T_q + i. Divide by sqrt(d).")


@visible("relative.shaw_relative_scores", "returns q's dtype; more queries than keys is a ValueError")
def _(ns):
    g = torch.Generator().manual_seed(2)
    q, k, rel_k = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    for dtype in (torch.float16, torch.float64):
        what = call_text("shaw_relative_scores", q.to(dtype), k.to(dtype), rel_k.to(dtype), 1)
        expect_dtype(ns.shaw_relative_scores(q.to(dtype), k.to(dtype), rel_k.to(dtype), 1), dtype, what)
    long_q = torch.randn(5, 4, generator=g)
    expect_value_error(ns.shaw_relative_scores, long_q, k, rel_k, 1, mentions=("q", "k"),
                       what=call_text("shaw_relative_scores", long_q, k, rel_k, 1))


# ---------------------------------------------------------------- shaw_relative_attention

@visible("relative.shaw_relative_attention", "zero rel_k and rel_v give ordinary softmax attention")
def _(ns):
    g = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 6, generator=g)
    rel_k, rel_v = torch.zeros(3, 4), torch.zeros(3, 6)
    what = call_text("shaw_relative_attention", q, k, v, rel_k, rel_v, 1)
    got = expect_tensor(ns.shaw_relative_attention(q, k, v, rel_k, rel_v, 1), what)
    expect_shape(got, (2, 3, 6), what)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1)
    expect_close(got, weights @ v, what, atol=1e-5, hint="Softmax over keys of the scores, then weights @ v.")


@visible("relative.shaw_relative_attention", "adds rel_v row clip(j - i, -K, K) + K to each value")
def _(ns):
    # q = k = 0: all scores 0, so weights are uniform, 1 / T_k. v = 0 and rel_v row r stores
    # r - K, so query i outputs the mean over keys of clip(j - i, -K, K).
    K = 2
    rel_k = torch.zeros(2 * K + 1, 4)
    rel_v = torch.arange(-K, K + 1, dtype=torch.float32)[:, None]
    for t_q, t_k in ((5, 5), (2, 5)):
        q, k, v = torch.zeros(t_q, 4), torch.zeros(t_k, 4), torch.zeros(t_k, 1)
        what = call_text("shaw_relative_attention", q, k, v, rel_k, rel_v, K)
        got = expect_tensor(ns.shaw_relative_attention(q, k, v, rel_k, rel_v, K), what)
        expected = _clipped_offsets(t_q, t_k, K).mean(dim=1, keepdim=True)
        expect_close(got, expected, what, atol=1e-5,
                     hint="Each value v_j gets rel_v row clip(j - i, -K, K) + K added before weighting; "
                          "query i sits at T_k - T_q + i.")


@visible("relative.shaw_relative_attention", "weights sum to one; returns q's dtype")
def _(ns):
    # Constant values and zero rel_v: any weights that sum to one return the constant.
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    v = torch.full((4, 3), 2.5)
    rel_k, rel_v = torch.randn(5, 8, generator=g), torch.zeros(5, 3)
    what = call_text("shaw_relative_attention", q, k, v, rel_k, rel_v, 2)
    expect_close(ns.shaw_relative_attention(q, k, v, rel_k, rel_v, 2), v, what, atol=1e-5,
                 hint="Softmax over the key axis (the last one).")
    half = [t.half() for t in (q, k, v, rel_k, rel_v)]
    what = call_text("shaw_relative_attention", *half, 2)
    expect_dtype(ns.shaw_relative_attention(*half, 2), torch.float16, what)
