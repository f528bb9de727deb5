"""Hidden suite, section 5 (relative positions: Shaw et al. 2018, T5).

References are independent of solutions/:
- T5 buckets with exact integer arithmetic: distance a (>= e) is in log bucket e + m when
  (a/e)^(n-e) >= (max_distance/e)^m, checked as a^(n-e) e^m >= max_distance^m e^(n-e) on
  Python integers. tests/test_relative_against_transformers.py shows this agrees with
  transformers' T5Attention._relative_position_bucket (float32) on every input graded here.
- Shaw scores and attention in float64 NumPy with the offset table index written out.
"""
import bisect
import math
from functools import lru_cache

import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_equal,
                             expect_value_error)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise
F32 = dict(atol=1e-5, rtol=1e-4)



# ---------------------------------------------------------------- references: T5
@lru_cache(maxsize=None)
def ref_log_edges(n, max_distance, e):
    """Smallest distance of each log bucket e+1 .. n-1 of one side with n buckets, e exact ones, exactly."""
    edges = []
    for m in range(1, n - e):
        a = max(e, int(e * (max_distance / e) ** (m / (n - e))) - 2)   # float guess, then exact correction
        while a > e and (a - 1) ** (n - e) * e ** m >= max_distance ** m * e ** (n - e):
            a -= 1
        while a ** (n - e) * e ** m < max_distance ** m * e ** (n - e):
            a += 1
        edges.append(a)
    return tuple(edges)


def ref_side_bucket(a, n, max_distance, e):
    """Bucket of distance a >= 0 within a side of n buckets: exact below e, then log buckets capped at n-1."""
    if a < e:
        return a
    return e + bisect.bisect_right(ref_log_edges(n, max_distance, e), a)  # edges <= a (they ascend)


def ref_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128, *,
               halve=True, zero_upper=False, cap=True, exact_shift=0):
    """T5 buckets of key - query offsets, as int64. The keyword knobs reproduce learner mistakes."""
    rel = np.asarray(relative_position, dtype=np.int64)
    values, where = np.unique(rel, return_inverse=True)  # each distinct offset once
    out = np.empty(values.shape, dtype=np.int64)
    for index, r in enumerate(values.tolist()):
        if bidirectional:
            n = num_buckets // 2 if halve else num_buckets
            upper = r >= 0 if zero_upper else r > 0
            offset, a = (n if upper else 0), abs(r)
        else:
            n, offset, a = num_buckets, 0, max(-r, 0)
        e = n // 2 + exact_shift
        bucket = ref_side_bucket(a, n, max_distance, e)
        if not cap and a >= e:   # the formula without min(., n - 1): log-spaced on past max_distance
            bucket = e + int(math.log(a / e) / math.log(max_distance / e) * (n - e))
        out[index] = offset + bucket
    return torch.from_numpy(out[where.ravel()].reshape(rel.shape))


def bucket_mistakes(rel, bidirectional=True, num_buckets=32, max_distance=128):
    """Outputs of mistakes learners make, by name, for closest_mistake."""
    kw = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    found = {
        mistake("offset-sign", "query - key; relative_position is key - query (positive = key after the query)"):
            ref_bucket(-np.asarray(rel), **kw),
        mistake("t5-cap", "the buckets without the log part capped at num_buckets - 1 (distances from max_distance "
                "on must share the last bucket of their side)"): ref_bucket(rel, cap=False, **kw),
        mistake("t5-exact-range", "an exact range one distance too long: with n buckets per side, distances 0 .. "
                "n//2 - 1 get their own bucket and the log part starts at n//2"):
            ref_bucket(rel, exact_shift=1, **kw),
        mistake("t5-exact-range", "an exact range one distance too short: with n buckets per side, distances 0 .. "
                "n//2 - 1 get their own bucket and the log part starts at n//2"):
            ref_bucket(rel, exact_shift=-1, **kw),
    }
    if bidirectional:
        found[mistake("t5-halving", "bidirectional buckets without halving num_buckets (each side gets "
                      "num_buckets // 2)")] = ref_bucket(rel, halve=False, **kw)
        found[mistake("t5-zero-side", "relative position 0 placed in the upper half; only keys after the query (r "
                      "> 0) go there")] = ref_bucket(rel, zero_upper=True, **kw)
        found[mistake("t5-bidirectional", "causal buckets; with bidirectional=True keys after the query get their "
                      "own half")] = ref_bucket(rel, **dict(kw, bidirectional=False))
    else:
        found[mistake("t5-bidirectional", "bidirectional buckets; with bidirectional=False all buckets describe "
                      "the past")] = ref_bucket(rel, **dict(kw, bidirectional=True))
    return found


def ref_t5_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128, sign=1):
    rel = sign * (np.asarray(k_pos)[None, :] - np.asarray(q_pos)[:, None])
    buckets = ref_bucket(rel, bidirectional, table.shape[0], max_distance)
    return table.detach().double()[buckets].permute(2, 0, 1)


# ---------------------------------------------------------------- references: Shaw
def ref_shaw_index(t_q, t_k, K, *, align_end=True, key_minus_query=True, plus_k=True, clip=True):
    start = t_k - t_q if align_end else 0
    index = np.empty((t_q, t_k), dtype=np.int64)
    for i in range(t_q):
        for j in range(t_k):
            r = j - (start + i) if key_minus_query else (start + i) - j
            index[i, j] = (max(-K, min(K, r)) if clip else r) + (K if plus_k else 0)   # Python wraps negatives
    return index


def ref_shaw(q, k, v, rel_k, rel_v, K, *, scale_rel=True, use_rel_v=True, softmax_axis=-1, v_index=None,
             **index_kw):
    """(scores, output) in float64; output is None when v is None. The keyword knobs reproduce
    learner mistakes: index_kw in both tables, v_index (a dict of them) in rel_v only."""
    q, k, rel_k = (t.detach().double().numpy() for t in (q, k, rel_k))
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    index = ref_shaw_index(t_q, t_k, K, **index_kw)
    index_v = index if v_index is None else ref_shaw_index(t_q, t_k, K, **v_index)
    content = q @ np.swapaxes(k, -1, -2)
    position = np.einsum("...id,ijd->...ij", q, rel_k[index])
    scores = (content + position) / math.sqrt(d) if scale_rel else content / math.sqrt(d) + position
    if v is None:
        return torch.from_numpy(scores), None
    v, rel_v = v.detach().double().numpy(), rel_v.detach().double().numpy()
    weights = np.exp(scores - scores.max(softmax_axis, keepdims=True))
    weights /= weights.sum(softmax_axis, keepdims=True)
    out = weights @ v
    if use_rel_v:
        out = out + np.einsum("...ij,ijd->...id", weights, rel_v[index_v])
    return torch.from_numpy(scores), torch.from_numpy(out)


def scores_mistakes(q, k, rel_k, K):
    found = {
        mistake("offset-sign", "offsets query - key (i - j); Shaw indexes rel_k by key - query, clip(j - i, -K, K) "
                "+ K"): ref_shaw(q, k, None, rel_k, None, K, key_minus_query=False)[0],
        mistake("shaw-no-plus-k", "rel_k indexed by clip(j - i, -K, K) without adding K (negative offsets wrap to "
                "the end of the table)"): ref_shaw(q, k, None, rel_k, None, K, plus_k=False)[0],
        mistake("not-scaled", "the relative term q . rel_k not divided by sqrt(d); both terms are"):
            ref_shaw(q, k, None, rel_k, None, K, scale_rel=False)[0],
    }
    if q.shape[-2] < k.shape[-2]:
        found[mistake("queries-at-start", "queries placed at the first positions; with fewer queries than keys "
                      "they are the last T_q positions (query i at T_k - T_q + i)")] = \
            ref_shaw(q, k, None, rel_k, None, K, align_end=False)[0]
    unclipped = ref_shaw_index(q.shape[-2], k.shape[-2], K, clip=False)
    if unclipped.max() <= 2 * K and unclipped.min() >= -(2 * K + 1):  # else unclipped indexing fails outright
        found[mistake("shaw-no-clip", "offsets j - i not clipped to [-K, K]: rel_k[j - i + K] runs off the table, "
                      "and negative rows wrap to its end")] = ref_shaw(q, k, None, rel_k, None, K, clip=False)[0]
    return found


def attention_mistakes(q, k, v, rel_k, rel_v, K):
    found = {
        mistake("shaw-no-rel-v", "attention without rel_v; each value v_j needs rel_v[clip(j - i, -K, K) + K] added"):
            ref_shaw(q, k, v, rel_k, rel_v, K, use_rel_v=False)[1],
        mistake("offset-sign", "rel_v indexed by query - key (i - j) instead of key - query"):
            ref_shaw(q, k, v, rel_k, rel_v, K, v_index=dict(key_minus_query=False))[1],
        mistake("shaw-no-plus-k", "rel_v indexed without the +K offset"):
            ref_shaw(q, k, v, rel_k, rel_v, K, v_index=dict(plus_k=False))[1],
        mistake("softmax-over-queries", "a softmax over the queries (axis -2); weights are normalised over the "
                "keys, the last axis"): ref_shaw(q, k, v, rel_k, rel_v, K, softmax_axis=-2)[1],
    }
    if q.shape[-2] < k.shape[-2]:
        found[mistake("queries-at-start", "rel_v rows for queries placed at the first positions; with fewer "
                      "queries than keys they are the last T_q positions")] = \
            ref_shaw(q, k, v, rel_k, rel_v, K, v_index=dict(align_end=False))[1]
        found[mistake("queries-at-start", "queries placed at the first positions; with fewer queries than keys "
                      "they are the last T_q positions")] = \
            ref_shaw(q, k, v, rel_k, rel_v, K, align_end=False)[1]
    return found


def expect_bias(submission, got, table, q_pos, k_pos, what, bidirectional=True, max_distance=128, hint=""):
    """Right if it matches T5's buckets, or table[the learner's own bucket(k - q)] (the contract
    says the bias reads buckets of t5_relative_position_bucket, so a bucket mistake is not charged twice)."""
    expected = ref_t5_bias(table, q_pos, k_pos, bidirectional, max_distance)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.device.type == "cpu" \
            and submission.defines("t5_relative_position_bucket"):
        rel = k_pos[None, :] - q_pos[:, None]
        try:
            own = submission.t5_relative_position_bucket(rel, bidirectional=bidirectional,
                                                         num_buckets=table.shape[0], max_distance=max_distance)
        except Exception:  # noqa: BLE001 - their buckets fail: judge against T5's alone
            own = None
        if isinstance(own, torch.Tensor) and own.shape == rel.shape and not own.is_floating_point() \
                and bool(((own >= 0) & (own < table.shape[0])).all()):
            if torch.equal(got.double(), table.double()[own.long()].permute(2, 0, 1)):
                return
    expect_close(got, expected, what, atol=0, rtol=0, hint=hint)


def expect_attention(submission, got, q, k, v, rel_k, rel_v, K, what, **tolerance):
    """Right if it matches the reference, or softmax(the learner's own shaw_relative_scores) mixed
    with v + rel_v (the contract builds attention on those scores: a scores mistake is charged once)."""
    expected = ref_shaw(q, k, v, rel_k, rel_v, K)[1]
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.device.type == "cpu" \
            and submission.defines("shaw_relative_scores"):
        try:
            own = submission.shaw_relative_scores(q, k, rel_k, K)
        except Exception:  # noqa: BLE001 - their scores fail: judge against the reference alone
            own = None
        if isinstance(own, torch.Tensor) and own.shape == expected.shape[:-1] + (k.shape[-2],):
            weights = torch.softmax(own.double(), dim=-1).numpy()
            index = ref_shaw_index(q.shape[-2], k.shape[-2], K)
            mine = weights @ v.double().numpy() + np.einsum("...ij,ijd->...id", weights, rel_v.double().numpy()[index])
            if torch.allclose(got.double(), torch.from_numpy(mine), **tolerance):
                return
    hint = closest_mistake(got, attention_mistakes(q, k, v, rel_k, rel_v, K))
    expect_close(got, expected, what, **tolerance, hint=hint)


def check_not_in_place(submission, name):
    if submission.mutated_inputs():
        raise Mismatch(f"{name} changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


ON_DEVICE = "Create every helper tensor (positions, buckets, indices) on the input's device."


# ---------------------------------------------------------------- t5_relative_position_bucket
@exercise("relative.t5_relative_position_bucket", weight=2)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_bucket_small_offsets(submission, bidirectional):
    """gives each small offset its own bucket, on the right side"""
    rel = torch.arange(-9, 10)
    what = call_text("t5_relative_position_bucket", rel, bidirectional=bidirectional) + \
        " with relative_position = arange(-9, 10) (index n is offset n - 9)"
    got = submission.t5_relative_position_bucket(rel, bidirectional=bidirectional)
    expected = ref_bucket(rel, bidirectional)
    expect_equal(got, expected, what, hint=closest_mistake(got, bucket_mistakes(rel, bidirectional)))


@exercise("relative.t5_relative_position_bucket", weight=2)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_bucket_log_range(submission, bidirectional):
    """log-spaces larger distances and caps them at the last bucket of each side"""
    rel = torch.arange(-300, 301)
    what = call_text("t5_relative_position_bucket", rel, bidirectional=bidirectional) + \
        " with relative_position = arange(-300, 301) (index n is offset n - 300)"
    got = submission.t5_relative_position_bucket(rel, bidirectional=bidirectional)
    expect_equal(got, ref_bucket(rel, bidirectional), what,
                 hint=closest_mistake(got, bucket_mistakes(rel, bidirectional)))


@exercise("relative.t5_relative_position_bucket", weight=2)
@pytest.mark.parametrize("bidirectional,num_buckets,max_distance",
                         [(True, 16, 64), (False, 8, 32), (True, 64, 256), (False, 32, 512)])
def test_bucket_other_settings(submission, bidirectional, num_buckets, max_distance):
    """uses the num_buckets and max_distance it is given"""
    rel = torch.arange(-600, 601, 3)
    kw = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    what = call_text("t5_relative_position_bucket", rel, **kw) + \
        " with relative_position = arange(-600, 601, 3) (index n is offset 3n - 600)"
    got = submission.t5_relative_position_bucket(rel, **kw)
    expect_equal(got, ref_bucket(rel, **kw), what, hint=closest_mistake(got, bucket_mistakes(rel, **kw)))


@exercise("relative.t5_relative_position_bucket")
def test_bucket_far_away(submission):
    """puts very large distances in the last bucket of their side"""
    rel = torch.tensor([-10**6, -5000, 5000, 10**6])
    for bidirectional in (True, False):
        what = call_text("t5_relative_position_bucket", rel, bidirectional=bidirectional)
        got = submission.t5_relative_position_bucket(rel, bidirectional=bidirectional)
        expect_equal(got, ref_bucket(rel, bidirectional), what,
                     hint=closest_mistake(got, bucket_mistakes(rel, bidirectional)))


@exercise("relative.t5_relative_position_bucket")
@pytest.mark.robustness
def test_bucket_shape_and_dtype(submission):
    """keeps the input's shape and returns int64, also for int32 input"""
    rel = (torch.arange(5)[None, :] - torch.arange(4)[:, None]).to(torch.int32) * 9
    what = call_text("t5_relative_position_bucket", rel)
    got = submission.t5_relative_position_bucket(rel)
    expect_dtype(got, torch.int64, what)
    expect_equal(got, ref_bucket(rel), what)


@exercise("relative.t5_relative_position_bucket")
@pytest.mark.robustness
def test_bucket_device_and_inputs(submission):
    """keeps the output on the input's device and leaves the input unchanged"""
    submission.t5_relative_position_bucket(torch.arange(-40, 40))
    check_not_in_place(submission, "t5_relative_position_bucket")
    same_on_second_device(submission, submission.t5_relative_position_bucket, torch.arange(-150, 150).reshape(20, 15),
                          hint=ON_DEVICE)


# ---------------------------------------------------------------- t5_relative_bias
@exercise("relative.t5_relative_bias", weight=2)
def test_bias_small(submission):
    """reads table[bucket(k_pos[j] - q_pos[i]), h] into entry [h, i, j]"""
    table, q_pos, k_pos = rand(32, 3, seed=1), torch.arange(3), torch.arange(5)
    what = call_text("t5_relative_bias", table, q_pos, k_pos)
    got = submission.t5_relative_bias(table, q_pos, k_pos)
    expected = ref_t5_bias(table, q_pos, k_pos)
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (3, 5, 3) != tuple(expected.shape):
        raise Mismatch(f"{what} returned shape (T_q, T_k, H) = (3, 5, 3); put the head axis first: (H, T_q, T_k)",
                       "heads-last")
    hint = closest_mistake(got, {
        mistake("offset-sign", "query - key; the bucket is of k_pos[j] - q_pos[i]"):
            ref_t5_bias(table, q_pos, k_pos, sign=-1),
        mistake("t5-bidirectional", "causal buckets; pass bidirectional on"):
            ref_t5_bias(table, q_pos, k_pos, bidirectional=False),
    })
    expect_bias(submission, got, table, q_pos, k_pos, what, hint=hint)


@exercise("relative.t5_relative_bias", weight=2)
@pytest.mark.parametrize("bidirectional,num_buckets,max_distance", [(False, 32, 128), (True, 16, 40), (False, 8, 20)])
def test_bias_settings(submission, bidirectional, num_buckets, max_distance):
    """takes num_buckets from the table and passes bidirectional and max_distance on"""
    table = rand(num_buckets, 2, seed=2)
    q_pos, k_pos = torch.tensor([0, 7, 150, 151]), torch.arange(0, 300, 11)
    kw = dict(bidirectional=bidirectional, max_distance=max_distance)
    what = call_text("t5_relative_bias", table, q_pos, k_pos, **kw) + " with k_pos = arange(0, 300, 11)"
    got = submission.t5_relative_bias(table, q_pos, k_pos, **kw)
    hint = closest_mistake(got, {
        mistake("default-argument", "the default max_distance=128; pass max_distance on to the bucketing"):
            ref_t5_bias(table, q_pos, k_pos, bidirectional=bidirectional),
        mistake("default-argument", "the default bidirectional=True; pass bidirectional on"):
            ref_t5_bias(table, q_pos, k_pos, max_distance=max_distance),
        mistake("offset-sign", "query - key; the bucket is of k_pos[j] - q_pos[i]"):
            ref_t5_bias(table, q_pos, k_pos, sign=-1, **kw),
    })
    expect_bias(submission, got, table, q_pos, k_pos, what, **kw, hint=hint)


@exercise("relative.t5_relative_bias")
def test_bias_buckets_from_table(submission):
    """takes num_buckets from the table's rows (16 here, not T5's 32)"""
    table, q_pos, k_pos = rand(16, 2, seed=18), torch.tensor([15]), torch.arange(16)
    what = call_text("t5_relative_bias", table, q_pos, k_pos, bidirectional=False)
    got = submission.t5_relative_bias(table, q_pos, k_pos, bidirectional=False)
    rel = np.asarray(k_pos)[None, :] - np.asarray(q_pos)[:, None]
    hint = closest_mistake(got, {  # past distances 0..15 stay in the 16 rows with T5's 32 buckets too
        mistake("default-argument", "the default num_buckets=32; the number of buckets is the table's row count"):
            table.double()[ref_bucket(rel, False, 32)].permute(2, 0, 1),
    })
    expect_bias(submission, got, table, q_pos, k_pos, what, bidirectional=False, hint=hint)


@exercise("relative.t5_relative_bias")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_bias_dtype(submission, dtype):
    """returns the table's dtype with the table's exact values"""
    table = rand(32, 2, seed=3, dtype=dtype)
    q_pos, k_pos = torch.arange(4), torch.arange(6)
    what = call_text("t5_relative_bias", table, q_pos, k_pos)
    got = submission.t5_relative_bias(table, q_pos, k_pos)
    expect_dtype(got, dtype, what)
    expect_bias(submission, got, table, q_pos, k_pos, what)


@exercise("relative.t5_relative_bias")
@pytest.mark.robustness
def test_bias_device_and_inputs(submission):
    """keeps the output on the table's device and leaves the inputs unchanged"""
    submission.t5_relative_bias(rand(32, 2, seed=4), torch.arange(3), torch.arange(4))
    check_not_in_place(submission, "t5_relative_bias")
    same_on_second_device(submission, submission.t5_relative_bias, rand(32, 2, seed=5), torch.arange(3),
                          torch.arange(40), hint=ON_DEVICE)


@exercise("relative.t5_relative_bias")
@pytest.mark.uses("argument_checks")
def test_bias_bad_table(submission):
    """rejects a table that is not (num_buckets, H) with a ValueError naming table"""
    table = rand(32, seed=5)
    expect_value_error(submission.t5_relative_bias, table, torch.arange(2), torch.arange(2), mentions="table",
                       what=call_text("t5_relative_bias", table, torch.arange(2), torch.arange(2)))


# ---------------------------------------------------------------- shaw_relative_scores
@exercise("relative.shaw_relative_scores", weight=2)
def test_scores_small(submission):
    """adds q_i . rel_k[clip(j - i, -K, K) + K] to q_i . k_j, both over sqrt(d)"""
    q, k, rel_k = rand(4, 2, seed=6), rand(4, 2, seed=7), rand(3, 2, seed=8)
    what = call_text("shaw_relative_scores", q, k, rel_k, 1)
    got = submission.shaw_relative_scores(q, k, rel_k, 1)
    expect_close(got, ref_shaw(q, k, None, rel_k, None, 1)[0], what, **F32,
                 hint=closest_mistake(got, scores_mistakes(q, k, rel_k, 1)))


@exercise("relative.shaw_relative_scores")
@pytest.mark.parametrize("K", [0, 2, 9])
def test_scores_clipping(submission, K):
    """clips offsets beyond K to the edge rows (K = 0: a single shared row)"""
    q, k, rel_k = rand(7, 4, seed=9), rand(7, 4, seed=10), rand(2 * K + 1, 4, seed=11)
    what = call_text("shaw_relative_scores", q, k, rel_k, K)
    got = submission.shaw_relative_scores(q, k, rel_k, K)
    expect_close(got, ref_shaw(q, k, None, rel_k, None, K)[0], what, **F32,
                 hint=closest_mistake(got, scores_mistakes(q, k, rel_k, K)))


@exercise("relative.shaw_relative_scores", weight=2)
def test_scores_cached_queries(submission):
    """places fewer queries than keys at the last positions"""
    q, k, rel_k = rand(2, 4, seed=12), rand(6, 4, seed=13), rand(5, 4, seed=14)
    what = call_text("shaw_relative_scores", q, k, rel_k, 2) + " (2 new queries after 4 cached keys)"
    got = submission.shaw_relative_scores(q, k, rel_k, 2)
    expect_close(got, ref_shaw(q, k, None, rel_k, None, 2)[0], what, **F32,
                 hint=closest_mistake(got, scores_mistakes(q, k, rel_k, 2)))


@exercise("relative.shaw_relative_scores")
def test_scores_batch_heads(submission):
    """works on (batch, heads, T, d) with one rel_k shared by all heads"""
    q, k, rel_k = rand(2, 3, 4, 8, seed=15), rand(2, 3, 5, 8, seed=16), rand(7, 8, seed=17)
    what = call_text("shaw_relative_scores", q, k, rel_k, 3)
    got = submission.shaw_relative_scores(q, k, rel_k, 3)
    expect_close(got, ref_shaw(q, k, None, rel_k, None, 3)[0], what, **F32)


@exercise("relative.shaw_relative_scores")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 1e-2), (torch.bfloat16, 4e-2), (torch.float64, 1e-5)])
def test_scores_dtypes(submission, dtype, tol):
    """returns q's dtype, computed in float32 or wider"""
    q, k, rel_k = rand(3, 16, seed=18, dtype=dtype), rand(5, 16, seed=19, dtype=dtype), rand(5, 16, seed=20, dtype=dtype)
    what = call_text("shaw_relative_scores", q, k, rel_k, 2)
    got = submission.shaw_relative_scores(q, k, rel_k, 2)
    expect_dtype(got, dtype, what)
    expect_close(got, ref_shaw(q, k, None, rel_k, None, 2)[0], what, atol=tol, rtol=tol)


@exercise("relative.shaw_relative_scores")
@pytest.mark.robustness
def test_scores_device_and_inputs(submission):
    """keeps the output on q's device and leaves the inputs unchanged"""
    submission.shaw_relative_scores(rand(3, 4, seed=21), rand(3, 4, seed=22), rand(3, 4, seed=23), 1)
    check_not_in_place(submission, "shaw_relative_scores")
    same_on_second_device(submission, submission.shaw_relative_scores, rand(2, 3, 4, seed=24), rand(2, 5, 4, seed=25),
                          rand(5, 4, seed=26), 2, hint=ON_DEVICE)


@exercise("relative.shaw_relative_scores")
@pytest.mark.uses("argument_checks")
def test_scores_bad_arguments(submission):
    """rejects more queries than keys (naming q or k) and a rel_k that is not (2K+1, d) (naming rel_k or max_distance)"""
    q, k = rand(5, 4, seed=24), rand(3, 4, seed=25)
    rel_k = rand(3, 4, seed=26)
    expect_value_error(submission.shaw_relative_scores, q, k, rel_k, 1, mentions=("q", "k"),
                       what=call_text("shaw_relative_scores", q, k, rel_k, 1))
    bad = rand(4, 4, seed=27)
    expect_value_error(submission.shaw_relative_scores, k, k, bad, 1, mentions=("rel_k", "max_distance"),
                       what=call_text("shaw_relative_scores", k, k, bad, 1))


# ---------------------------------------------------------------- shaw_relative_attention
@exercise("relative.shaw_relative_attention", weight=2)
def test_attention_small(submission):
    """mixes v_j + rel_v[clip(j - i, -K, K) + K] with the softmax weights"""
    q, k, v = rand(4, 2, seed=28), rand(4, 2, seed=29), rand(4, 3, seed=30)
    rel_k, rel_v = rand(3, 2, seed=31), rand(3, 3, seed=32)
    what = call_text("shaw_relative_attention", q, k, v, rel_k, rel_v, 1)
    got = submission.shaw_relative_attention(q, k, v, rel_k, rel_v, 1)
    expect_attention(submission, got, q, k, v, rel_k, rel_v, 1, what, **F32)


@exercise("relative.shaw_relative_attention", weight=2)
def test_attention_cached_queries(submission):
    """places fewer queries than keys at the last positions"""
    q, k, v = rand(2, 4, seed=33), rand(7, 4, seed=34), rand(7, 2, seed=35)
    rel_k, rel_v = rand(5, 4, seed=36), rand(5, 2, seed=37)
    what = call_text("shaw_relative_attention", q, k, v, rel_k, rel_v, 2) + " (2 new queries after 5 cached keys)"
    got = submission.shaw_relative_attention(q, k, v, rel_k, rel_v, 2)
    expect_attention(submission, got, q, k, v, rel_k, rel_v, 2, what, **F32)


@exercise("relative.shaw_relative_attention")
def test_attention_batch_heads(submission):
    """works on (batch, heads, T, d) with d_v different from d"""
    q, k, v = rand(2, 2, 3, 8, seed=38), rand(2, 2, 6, 8, seed=39), rand(2, 2, 6, 5, seed=40)
    rel_k, rel_v = rand(9, 8, seed=41), rand(9, 5, seed=42)
    what = call_text("shaw_relative_attention", q, k, v, rel_k, rel_v, 4)
    got = submission.shaw_relative_attention(q, k, v, rel_k, rel_v, 4)
    expect_attention(submission, got, q, k, v, rel_k, rel_v, 4, what, **F32)


@exercise("relative.shaw_relative_attention")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 1e-2), (torch.bfloat16, 4e-2), (torch.float64, 1e-5)])
def test_attention_dtypes(submission, dtype, tol):
    """returns q's dtype, with softmax and sums in float32 or wider"""
    tensors = [rand(*shape, seed=43 + n, dtype=dtype) for n, shape in enumerate([(3, 8), (5, 8), (5, 4), (5, 8), (5, 4)])]
    what = call_text("shaw_relative_attention", *tensors, 2)
    got = submission.shaw_relative_attention(*tensors, 2)
    expect_dtype(got, dtype, what)
    expect_attention(submission, got, *tensors, 2, what, atol=tol, rtol=tol)


@exercise("relative.shaw_relative_attention")
@pytest.mark.robustness
def test_attention_device_and_inputs(submission):
    """keeps the output on q's device and leaves the inputs unchanged"""
    tensors = [rand(*shape, seed=50 + n) for n, shape in enumerate([(3, 4), (3, 4), (3, 2), (3, 4), (3, 2)])]
    submission.shaw_relative_attention(*tensors, 1)
    check_not_in_place(submission, "shaw_relative_attention")
    tensors = [rand(*shape, seed=55 + n) for n, shape in enumerate([(2, 3, 4), (2, 5, 4), (2, 5, 6), (5, 4), (5, 6)])]
    same_on_second_device(submission, submission.shaw_relative_attention, *tensors, 2, hint=ON_DEVICE)


@exercise("relative.shaw_relative_attention")
@pytest.mark.uses("argument_checks")
def test_attention_bad_arguments(submission):
    """rejects a rel_v that is not (2K+1, d_v) (naming rel_v or v) and more queries than keys (naming q or k)"""
    q, k, v = rand(3, 4, seed=55), rand(3, 4, seed=56), rand(3, 2, seed=57)
    rel_k, bad_rel_v = rand(3, 4, seed=58), rand(3, 4, seed=59)
    expect_value_error(submission.shaw_relative_attention, q, k, v, rel_k, bad_rel_v, 1, mentions=("rel_v", "v"),
                       what=call_text("shaw_relative_attention", q, k, v, rel_k, bad_rel_v, 1))
    long_q = rand(4, 4, seed=60)
    rel_v = rand(3, 2, seed=61)
    expect_value_error(submission.shaw_relative_attention, long_q, k, v, rel_k, rel_v, 1, mentions=("q", "k"),
                       what=call_text("shaw_relative_attention", long_q, k, v, rel_k, rel_v, 1))
