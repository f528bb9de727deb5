"""What the visible checks of the two cached attention exercises (rope, alibi) share: a call
that must return (out, cache), prefill-then-decode against one full pass, and the cache."""
from __future__ import annotations

from course.checking import call_text, expect_close, expect_shape, expect_value_error


def call_pair(fn, what: str, *args):
    """fn(*args), which must return a pair (out, (keys, values))."""
    out = fn(*args)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(f"{what} returned {type(out).__name__}, expected a pair (out, (keys, values))")
    return out


def expect_decoding_matches_full_pass(fn, q, k, v, mask, prefill: int, hint: str, **tolerance) -> None:
    """A prefill of `prefill` tokens, then one token per call with the returned cache, gives
    what one call over all the tokens gives, column by column."""
    t = q.shape[-2]
    what = f"one call over {t} tokens of a left-padded batch"
    full, _ = call_pair(fn, what, q, k, v, mask)
    _, cache = call_pair(fn, f"the prefill of {prefill} tokens", q[..., :prefill, :], k[..., :prefill, :],
                         v[..., :prefill, :], mask[:, :prefill])
    for col in range(prefill, t):
        step = f"decode step {col - prefill + 1} (column {col}), after a prefill of {prefill} tokens"
        out, cache = call_pair(fn, step, q[..., col:col + 1, :], k[..., col:col + 1, :], v[..., col:col + 1, :],
                               mask[:, :col + 1], cache)
        expect_close(out, full[..., col:col + 1, :], f"{step} vs column {col} of {what}", hint=hint, **tolerance)


def expect_cache_and_mask_length(fn, name: str, q, k, v, mask) -> None:
    """After a prefill of all but the last token and one decode step, the cache holds every token;
    a mask shorter than the tokens is a ValueError naming attention_mask."""
    t = q.shape[-2]
    _, cache = call_pair(fn, f"the prefill of {t - 1} tokens", q[..., :-1, :], k[..., :-1, :], v[..., :-1, :],
                         mask[:, :-1])
    _, cache = call_pair(fn, "a decode step", q[..., -1:, :], k[..., -1:, :], v[..., -1:, :], mask, cache)
    after = f"after a prefill of {t - 1} tokens and 1 decode step"
    expect_shape(cache[0], q.shape, f"the keys of the cache {after}")
    expect_shape(cache[1], v.shape, f"the values of the cache {after}")
    short = mask[:, :-1]
    expect_value_error(fn, q, k, v, short, mentions="attention_mask",
                       what=call_text(name, q, k, v, short) + f" (mask of {t - 1} columns for {t} tokens)")
