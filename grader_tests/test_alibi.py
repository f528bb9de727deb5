"""Hidden suite, section 7 (ALiBi).

References are independent of solutions/: slopes follow the paper's rule written out for
each head count, attention is float64 NumPy with an explicit mask.
"""
import math

import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_shape,
                             expect_value_error)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.decode_loop import (LENGTH, PADS, PROMPT, expect_cache_grows, expect_inputs_kept,
                                       expect_loop, expect_mask_length_checked, left_padded_batch, loop_text,
                                       masking_mistakes, run_loop, strict_mask_mistakes)
from course.grading.mistakes import mistake

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


def ref_attention(q, k, v, causal=True, slopes=None, sign=-1.0, scale=True, aligned_end=True, mask=True,
                  distance=np.abs, strict=False, bias_at_start=False):
    """The knobs after `causal` reproduce learner mistakes (`distance` of i - j: a signed one
    without np.abs; `strict`: a causal mask that hides a query's own key; `bias_at_start`: the
    bias of queries at the first positions, the mask keeping them at the last)."""
    q, k, v = (t.double().numpy() for t in (q, k, v))
    heads, t_q, d = q.shape[-3:]
    t_k = k.shape[-2]
    slopes = ref_slopes(heads) if slopes is None else slopes
    k_pos = np.arange(t_k)
    q_pos = k_pos[t_k - t_q:] if aligned_end else k_pos[:t_q]
    bias_q_pos = k_pos[:t_q] if bias_at_start else q_pos
    bias = sign * slopes[:, None, None] * distance(bias_q_pos[:, None] - k_pos[None, :])
    scores = q @ np.swapaxes(k, -1, -2) / (math.sqrt(d) if scale else 1.0) + bias
    if causal and mask:
        scores = np.where(k_pos[None, :] <= q_pos[:, None] - strict, scores, -np.inf)
    with np.errstate(invalid="ignore"):  # a strict mask leaves the first query no key: a NaN row
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
        mistake("alibi-power-of-two", "the power-of-two formula 2^(-8i/n) applied to every n; for other counts the "
                "paper takes the slopes of the largest power of two below n, then every other slope of the next "
                "power of two"): torch.from_numpy(naive_slopes(n)),
        mistake("alibi-sorted", "the right slopes in sorted order; the paper's order (power-of-two block first, "
                "then the extra ones) is what trained models such as BLOOM use"):
            torch.from_numpy(np.sort(ref_slopes(n))[::-1].copy()),
        mistake("alibi-sorted", "the right slopes sorted in increasing order; the paper's order (power-of-two "
                "block first, then the extra ones) is what trained models such as BLOOM use"):
            torch.from_numpy(np.sort(ref_slopes(n))),
        mistake("alibi-extra-slopes", "the extra slopes taken from the 2nd, 4th, ... slopes of the next power of "
                "two, which repeat the first block; the paper takes its 1st, 3rd, 5th, ..."):
            torch.from_numpy(np.concatenate((ref_slopes(n)[: 1 << (n.bit_length() - 1)],
                                             ref_slopes(n)[: n - (1 << (n.bit_length() - 1))]))),
    }, atol=1e-6)
    expect_close(got, torch.from_numpy(ref_slopes(n)), f"alibi_slopes({n})", atol=1e-7, rtol=1e-6, hint=hint)


@exercise("alibi.alibi_slopes")
@pytest.mark.robustness
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
        mistake("alibi-bias-sign", "a positive bias: far keys must be penalised, so the bias is -slope * distance"):
            -ref_bias(slopes, pos, pos),
        mistake("alibi-signed-distance", "a signed distance (i - j) without the absolute value"): signed,
        mistake("alibi-signed-distance", "the signed distance (j - i)"): -signed,
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
@pytest.mark.robustness
def test_bias_dtype_follows_slopes(submission):
    """returns the dtype of the slopes it reads"""
    for dtype in (torch.float32, torch.float64):
        slopes = torch.tensor([0.5, 0.25], dtype=dtype)
        got = submission.alibi_bias(slopes, torch.arange(2), torch.arange(3))
        expect_dtype(got, dtype, call_text("alibi_bias", slopes, torch.arange(2), torch.arange(3)))


@exercise("alibi.alibi_bias")
@pytest.mark.robustness
def test_bias_not_in_place(submission):
    """leaves its inputs unchanged"""
    submission.alibi_bias(torch.tensor([0.5, 0.25]), torch.arange(3), torch.arange(3))
    if submission.mutated_inputs():
        raise Mismatch(f"alibi_bias changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


# ---------------------------------------------------------------- alibi_attention
def attention_mistakes(q, k, v, causal):
    strict = strict_mask_mistakes(ref_attention(q, k, v, causal=causal, strict=True)) if causal else {}
    return {**strict,
        mistake("alibi-no-mask", "no causal mask: the symmetric bias -m|i-j| alone still lets queries see later "
                "keys; apply the mask separately"): ref_attention(q, k, v, causal=causal, mask=False),
        mistake("alibi-bias-sign", "a bias with the wrong sign (+m * distance)"):
            ref_attention(q, k, v, causal=causal, sign=1.0),
        mistake("not-scaled", "scores not divided by sqrt(d)"): ref_attention(q, k, v, causal=causal, scale=False),
        mistake("alibi-power-of-two", "the power-of-two slope formula used for every head count"):
            ref_attention(q, k, v, causal=causal, slopes=naive_slopes(q.shape[-3])),
        mistake("queries-at-start", "queries placed at the first positions; with fewer queries than keys they are "
                "the last T_q positions"): ref_attention(q, k, v, causal=causal, aligned_end=False),
        **{mistake("alibi-signed-distance", f"a signed distance ({signed}) without the absolute value; without the "
                   "causal mask the bias is -m|i - j| on both sides"): ref_attention(q, k, v, causal=causal, distance=f)
           for signed, f in (("i - j", np.positive), ("j - i", np.negative))},
        # the mask at the last positions, the bias not (without the mask: the mistake above)
        **({mistake("queries-at-start", "queries placed at the first positions in the bias, while the causal mask "
                    "rightly keeps them at the last T_q positions"): ref_attention(q, k, v, bias_at_start=True)}
           if causal else {}),
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
@pytest.mark.robustness
def test_attention_half(submission):
    """keeps float16 inputs in float16, computing in float32"""
    q, k, v = (rand(4, 6, 8, seed=s, dtype=torch.float16) for s in (10, 11, 12))
    what = call_text("alibi_attention", q, k, v)
    got = submission.alibi_attention(q, k, v)
    expect_dtype(got, torch.float16, what)
    expect_attention(submission, got, q, k, v, what, atol=5e-3, rtol=5e-3)


@exercise("alibi.alibi_attention")
@pytest.mark.robustness
def test_attention_device(submission):
    """keeps the output on the input's device"""
    same_on_second_device(submission, submission.alibi_attention, rand(2, 3, 4, seed=60), rand(2, 5, 4, seed=61),
                          rand(2, 5, 4, seed=62), hint="Create positions, slopes and masks on q.device.")


@exercise("alibi.alibi_attention")
@pytest.mark.robustness
def test_attention_inputs(submission):
    """leaves inputs unchanged"""
    submission.alibi_attention(rand(2, 3, 4), rand(2, 3, 4), rand(2, 3, 4))
    if submission.mutated_inputs():
        raise Mismatch(f"alibi_attention changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("alibi.alibi_attention")
@pytest.mark.uses("argument_checks")
def test_attention_more_queries_than_keys(submission):
    """rejects more queries than keys with a ValueError naming q or k"""
    q, k = rand(2, 5, 4), rand(2, 3, 4)
    expect_value_error(submission.alibi_attention, q, k, k, mentions=("q", "k"), what=call_text("alibi_attention", q, k, k))


# ---------------------------------------------------------------- cached_alibi_attention
# The decode loop of course.grading.decode_loop: a left-padded batch, each real token's output
# against its row computed alone (ref_attention at positions 0, 1, 2, ...). Six heads: not a power
# of two. Under the causal mask every allowed key is at or before its query, so
# -m|pos_q - pos_k| = -m pos_q + m pos_k and the query's position cancels in the softmax: what must
# be consistent is the keys' numbering.
NAME, HEADS = "cached_alibi_attention", 6
HINTS = ("Are positions counted from the real tokens and padding keys masked?",
         "Are the new queries' positions counted from the real tokens, like the keys'?")


def simulate_alibi_loop(q, k, v, mask, chunks, q_numbering="real", k_numbering="real", mask_padding=True,
                        causal_from_end=True, sign=-1.0, slopes=None, strict=False):
    """Each call of the decode loop in float64 NumPy, with the knobs of known mistakes, for naming
    them only (expected values come from ref_attention on each row alone)."""
    real = mask.bool().numpy()
    counted = np.where(real, np.cumsum(real, -1) - 1, 0)  # real tokens before each one; 0 on padding
    q, k, v = (t.double().numpy() for t in (q, k, v))
    slopes = ref_slopes(q.shape[1]) if slopes is None else slopes
    outs, start = [], 0
    for n in chunks:
        stop = start + n
        q_pos = counted[:, start:stop] if q_numbering == "real" else np.broadcast_to(np.arange(n), (len(real), n))
        k_pos = counted[:, :stop] if k_numbering == "real" else np.broadcast_to(np.arange(stop), (len(real), stop))
        distance = np.abs(q_pos[:, :, None] - k_pos[:, None, :])[:, None]
        scores = q[..., start:stop, :] @ np.swapaxes(k[..., :stop, :], -1, -2) / np.sqrt(q.shape[-1])
        scores = scores + sign * slopes[None, :, None, None] * distance
        last = (start if causal_from_end else 0) + np.arange(n)[:, None] - strict  # the last key each query sees
        allowed = np.arange(stop)[None, :] <= last
        if mask_padding:
            allowed = allowed & real[:, None, None, :stop]
        scores = np.where(allowed, scores, -np.inf)
        with np.errstate(invalid="ignore"):
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            outs.append(torch.from_numpy(weights / weights.sum(-1, keepdims=True) @ v[..., :stop, :]))
        start = stop
    return outs


def alibi_loop_mistakes(q, k, v, mask, chunks):
    run = lambda **knobs: simulate_alibi_loop(q, k, v, mask, chunks, **knobs)  # noqa: E731
    return {
        mistake("positions-restart", "the new queries placed at position 0 in every call: a generated token's "
                "position continues from the real tokens before it"): run(q_numbering="restart"),
        mistake("positions-inconsistent", "key positions counting the padding (0 .. T_past + T_new - 1) while query "
                "positions count only real tokens; count the padding for both or for neither"):
            run(k_numbering="columns"),
        **masking_mistakes(run),
        mistake("alibi-bias-sign", "a bias with the wrong sign (+m * distance)"): run(sign=1.0),
        mistake("alibi-power-of-two", "the power-of-two slope formula used for every head count"):
            run(slopes=naive_slopes(q.shape[1])),
    }


def own_slopes(submission):
    """The learner's alibi_slopes(HEADS) when it is defined and usable: the contract says cached
    attention takes its slopes from it, so a slopes mistake is charged to alibi_slopes alone."""
    if not submission.defines("alibi_slopes"):
        return None
    try:
        own = submission.alibi_slopes(HEADS)
    except Exception:  # noqa: BLE001 - their slopes fail: judge against the paper's alone
        return None
    return own.double().numpy() if isinstance(own, torch.Tensor) and own.shape == (HEADS,) else None


def expect_alibi_loop(submission, outs, q, k, v, mask, chunks, what, **tolerance):
    mine = own_slopes(submission)

    def row_outputs(*row):
        return [ref_attention(*row)] + ([ref_attention(*row, slopes=mine)] if mine is not None else [])

    expect_loop(outs, q, k, v, mask, chunks, what, row_outputs, lambda: alibi_loop_mistakes(q, k, v, mask, chunks),
                HINTS, tolerance)


@exercise("alibi.cached_alibi_attention", weight=2)
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool], ids=["0/1 mask", "bool mask"])
def test_cached_alibi_full_pass(submission, mask_dtype):
    """one call over a left-padded batch equals each row computed alone without padding"""
    q, k, v, mask = left_padded_batch(HEADS)
    chunks = (LENGTH,)
    outs, _ = run_loop(submission.cached_alibi_attention, q, k, v, mask, chunks, mask_dtype)
    expect_alibi_loop(submission, outs, q, k, v, mask, chunks,
                      f"{loop_text(chunks)}, pads per row {PADS}, {str(mask_dtype)[6:]} mask")


@exercise("alibi.cached_alibi_attention", weight=3)
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool], ids=["0/1 mask", "bool mask"])
def test_cached_alibi_one_token_at_a_time(submission, mask_dtype):
    """prefill then one token per call equals the full pass, row by row"""
    q, k, v, mask = left_padded_batch(HEADS, seed=50)
    chunks = (PROMPT,) + (1,) * (LENGTH - PROMPT)
    outs, _ = run_loop(submission.cached_alibi_attention, q, k, v, mask, chunks, mask_dtype)
    expect_alibi_loop(submission, outs, q, k, v, mask, chunks, f"{loop_text(chunks)}, pads per row {PADS}")


@exercise("alibi.cached_alibi_attention", weight=2)
def test_cached_alibi_chunks(submission):
    """prefill then chunks of several tokens (causal mask aligned to the end) equals the full pass"""
    q, k, v, mask = left_padded_batch(HEADS, seed=60)
    chunks = (PROMPT - 1, 2, 3, 1)
    outs, _ = run_loop(submission.cached_alibi_attention, q, k, v, mask, chunks)
    expect_alibi_loop(submission, outs, q, k, v, mask, chunks, f"{loop_text(chunks)}, pads per row {PADS}")


@exercise("alibi.cached_alibi_attention")
def test_cached_alibi_cache_grows(submission):
    """returns a (keys, values) cache that grows by T_new along dim -2"""
    expect_cache_grows(submission.cached_alibi_attention, *left_padded_batch(HEADS, seed=70), (PROMPT, 2, 1))


@exercise("alibi.cached_alibi_attention")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 1e-2), (torch.bfloat16, 5e-2)])
def test_cached_alibi_half(submission, dtype, tol):
    """keeps float16/bfloat16 inputs in their dtype through prefill and decode, computing in float32"""
    q, k, v, mask = left_padded_batch(HEADS, seed=80, dtype=dtype)
    chunks = (PROMPT, 1, 1, 3)
    outs, _ = run_loop(submission.cached_alibi_attention, q, k, v, mask, chunks)
    for step, out in enumerate(outs):
        expect_dtype(out, dtype, f"call {step + 1} of {loop_text(chunks)} on {str(dtype)[6:]} inputs")
    # Half precision rounds q, k, v and the output; the reference sees the same rounded inputs. Outputs are
    # of order 1: float16 keeps about 3 decimal digits, bfloat16 about 2 (and cached keys are stored rounded).
    expect_alibi_loop(submission, outs, q, k, v, mask, chunks, f"{loop_text(chunks)} on {str(dtype)[6:]} inputs",
                      atol=tol, rtol=tol)


@exercise("alibi.cached_alibi_attention")
@pytest.mark.robustness
def test_cached_alibi_not_in_place(submission):
    """leaves q, k, v and the mask unchanged"""
    expect_inputs_kept(submission, NAME, *left_padded_batch(HEADS, seed=90))


@exercise("alibi.cached_alibi_attention")
@pytest.mark.uses("argument_checks")
def test_cached_alibi_mask_length(submission):
    """rejects an attention_mask that does not cover T_past + T_new tokens with a ValueError naming it"""
    expect_mask_length_checked(submission.cached_alibi_attention, NAME, *left_padded_batch(HEADS, seed=100))
