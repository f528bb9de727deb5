"""A learner's cached attention driven through a decode loop on a left-padded batch: what the
hidden suites of `rope.cached_rope_attention` and `alibi.cached_alibi_attention` share.

Row b of the batch has PADS[b] padding tokens, then real ones (row 0 has none). The prompt is
the first PROMPT columns; decoding appends the rest, one token or a chunk per call, passing the
returned cache back. Every real token's output is compared with its row computed alone (without
padding, without a cache) by the suite's own float64 reference. Tolerance: float32 level. A
correct implementation may number positions with a constant offset per row (only differences of
positions enter RoPE and ALiBi): the result then moves by float32 rounding alone, about 1e-6 for
offsets up to ~20, well inside 1e-5.
"""
from __future__ import annotations

from typing import Callable

import torch

from course import checking
from course.checking import Mismatch, call_text, closest_mistake, expect_close, expect_shape, expect_value_error
from course.grading.mistakes import mistake

PADS, PROMPT, LENGTH = (0, 3, 1), 5, 10
CACHED = dict(atol=1e-5, rtol=1e-5)


def left_padded_batch(heads: int, d: int = 8, d_v: int = 6, seed: int = 40, dtype=torch.float32):
    """q, k, v (B, heads, LENGTH, d or d_v) and the 0/1 mask (B, LENGTH), PADS[b] padding tokens in row b."""
    return checking.left_padded_batch(PADS, LENGTH, heads, d, d_v, seed, dtype)


def run_loop(fn: Callable, q, k, v, mask, chunks, mask_dtype=None) -> tuple[list, list]:
    """Call `fn` once per chunk of columns, passing the returned cache back; (outputs, caches)."""
    outs, caches, cache, start = [], [], None, 0
    for n in chunks:
        cols = slice(start, start + n)
        step_mask = mask[:, : start + n] if mask_dtype is None else mask[:, : start + n].to(mask_dtype)
        out, cache = fn(q[..., cols, :], k[..., cols, :], v[..., cols, :], step_mask, cache)
        outs.append(out)
        caches.append(cache)
        start += n
    return outs, caches


def strict_mask_mistakes(outputs) -> dict:
    """A causal mask that hides each query's own key, whose output (a tensor, or a decode loop's
    list of them) is `outputs`: a query left with no key is NaN there, or 0 when the learner's
    softmax is followed by nan_to_num."""
    text = ("a causal mask that hides each query's own key: a query sees the keys up to its own position, itself "
            "included")
    zeroed = [out.nan_to_num(0.0) for out in outputs] if isinstance(outputs, list) else outputs.nan_to_num(0.0)
    return {mistake("mask-strict", text): outputs,
            mistake("mask-strict", text + " (its first query is left with no key at all)"): zeroed}


def masking_mistakes(run: Callable) -> dict:
    """The cache-masking mistakes both cached attention exercises recognise: `run(**knobs)` is a
    suite's simulation of the decode loop with one knob turned."""
    return {
        mistake("padding-not-masked", "padding keys not masked: the attention_mask must remove padding from every "
                "query's keys"): run(mask_padding=False),
        mistake("queries-at-start", "the causal mask aligned to the start: with a cache, new query i sits at column "
                "T_past + i"): run(causal_from_end=False),
        **strict_mask_mistakes(run(strict=True)),
    }


def loop_text(chunks) -> str:
    if len(chunks) == 1:
        return "one call over the whole left-padded batch (cache=None)"
    return (f"prefill of {chunks[0]} columns, then calls of {', '.join(map(str, chunks[1:]))} tokens, "
            "each passing back the returned cache")


def expect_loop(outs, q, k, v, mask, chunks, what: str, row_outputs: Callable, mistakes: Callable,
                hints: tuple[str, str], tolerance: dict | None = None) -> None:
    """Each call's output, row by row, on every real token, against the row computed alone.

    `row_outputs(q_row, k_row, v_row)` gives the acceptable outputs (H, T_real, d_v) of one row
    without padding (the first is the one shown on failure); `mistakes()` the output of every
    call under each known mistake, by name, to name the closest; `hints` what to ask when none
    is close, for the prefill and for a decode step.
    """
    tolerance = tolerance or CACHED
    known, start = None, 0
    for step, (got, n) in enumerate(zip(outs, chunks)):
        call = "the full pass" if len(chunks) == 1 else ("the prefill" if step == 0 else f"decode step {step}")
        expect_shape(got, q.shape[:2] + (n, v.shape[-1]), f"{what}, {call}")
        for b, pad in enumerate(int(p) for p in (mask == 0).sum(-1)):
            first = max(start, pad)
            if first >= start + n:
                continue
            window = slice(first - pad, start + n - pad)
            mine = got[b, :, first - start:]
            accepted = [out[:, window] for out in row_outputs(q[b, :, pad:], k[b, :, pad:], v[b, :, pad:])]
            if any(torch.allclose(mine.double(), out, **tolerance) for out in accepted):
                continue
            known = known if known is not None else mistakes()
            hint = closest_mistake(mine, {name: out[step][b, :, first - start:] for name, out in known.items()})
            tokens = (f"real tokens {first - pad}..{start + n - pad - 1}" if start + n - 1 > first
                      else f"real token {first - pad}")
            expect_close(mine, accepted[0], f"{what}: row {b} ({pad} padding tokens), {call}, {tokens}: differs "
                         "from the row computed alone without padding", **tolerance,
                         hint=hint or hints[1 if step else 0])
        start += n


def expect_cache_grows(fn: Callable, q, k, v, mask, chunks) -> None:
    """The cache returned by each call is a pair (keys, values) grown by that call's tokens."""
    _, caches = run_loop(fn, q, k, v, mask, chunks)
    length = 0
    for step, (cache, n) in enumerate(zip(caches, chunks)):
        length += n
        what = f"the cache returned by call {step + 1} ({loop_text(chunks)})"
        if not isinstance(cache, (tuple, list)) or len(cache) != 2:
            raise Mismatch(f"{what} is {type(cache).__name__}; expected a tuple (keys, values)", "not-a-pair")
        expect_shape(cache[0], q.shape[:2] + (length, q.shape[-1]), f"{what}, keys")
        expect_shape(cache[1], v.shape[:2] + (length, v.shape[-1]), f"{what}, values")


def expect_inputs_kept(submission, name: str, q, k, v, mask) -> None:
    """A prefill and a decode step leave q, k, v and the mask unchanged (the cache may change)."""
    cache = None
    for call, cols in (("the prefill", slice(0, PROMPT)), ("a decode step", slice(PROMPT, PROMPT + 1))):
        _, cache = getattr(submission, name)(q[..., cols, :], k[..., cols, :], v[..., cols, :], mask[:, : cols.stop],
                                             cache)
        if submission.mutated_inputs():
            raise Mismatch(f"{name}, {call}, changed its {', '.join(submission.mutated_inputs())} in place",
                           "in-place")


def expect_mask_length_checked(fn: Callable, name: str, q, k, v, mask) -> None:
    """A mask that does not cover T_past + T_new tokens is a ValueError naming attention_mask."""
    expect_value_error(fn, q, k, v, mask[:, 1:], mentions="attention_mask",
                       what=call_text(name, q, k, v, mask[:, 1:]) + " (mask one column short)")
    _, cache = fn(q[..., :PROMPT, :], k[..., :PROMPT, :], v[..., :PROMPT, :], mask[:, :PROMPT])
    new = [t[..., PROMPT:PROMPT + 1, :] for t in (q, k, v)]
    expect_value_error(fn, *new, mask[:, PROMPT:PROMPT + 1], cache, mentions="attention_mask",
                       what=f"a decode step after a prefill of {PROMPT} tokens with a mask of the new token only")
