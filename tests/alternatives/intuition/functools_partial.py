"""Section 1 through functools: `attention` is a functools.partial of a general kernel that
always works in float32 (float64 inputs are held to float32 accuracy), masks with the
dtype's most negative finite number (Hugging Face style) and zeroes rows without any
allowed key afterwards; the causal mask comes from an lru_cache'd helper (cloned on the
way out) behind a validating decorator written with functools.wraps; the shift gap binds
q and k with functools.partial, passes the positions by the contract's keyword names
(q_pos=, k_pos=) and reduces with functools.reduce over .tolist()."""
import functools
import math

import torch
import torch.nn.functional as F


def _attend(q, k, v, mask=None, bias=None, *, compute_dtype):
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q has d={q.size(-1)} but k has d={k.size(-1)}")
    if v.size(-2) != k.size(-2):
        raise ValueError(f"v has {v.size(-2)} rows, k has {k.size(-2)}")
    scores = (q.to(compute_dtype) @ k.to(compute_dtype).mT) / math.sqrt(q.size(-1))
    if bias is not None:
        scores = scores + bias.to(compute_dtype)
    if mask is not None:
        mask = mask.to(torch.bool)
        scores = scores.masked_fill(~mask, torch.finfo(compute_dtype).min)
    weights = F.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True).to(compute_dtype)
    out = weights @ v.to(compute_dtype)
    return out.to(q.dtype), weights.to(q.dtype)


attention = functools.partial(_attend, compute_dtype=torch.float32)


@functools.lru_cache(maxsize=64)
def _mask(t_q, t_k):
    return torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q)


def _checked_lengths(fn):
    """Fill in t_k and validate (t_q, t_k) before calling fn; functools.wraps keeps fn's name and doc."""
    @functools.wraps(fn)
    def wrapper(t_q, t_k=None):
        t_k = t_q if t_k is None else t_k
        if t_q < 1:
            raise ValueError(f"bad t_q={t_q}")
        if t_k < t_q:
            raise ValueError(f"bad t_k={t_k} (less than t_q={t_q})")
        return fn(int(t_q), int(t_k))
    return wrapper


@_checked_lengths
def causal_mask(t_q, t_k=None):
    """Bool (t_q, t_k): query i (at position t_k - t_q + i) may see keys 0 .. t_k - t_q + i."""
    return _mask(t_q, t_k).clone()


def shift_gap(score_fn, q, k, positions, shift):
    scores = functools.partial(score_fn, q, k)            # the contract's score_fn(q, k, q_pos, k_pos)
    far = scores(q_pos=positions + shift, k_pos=positions + shift)
    near = scores(q_pos=positions, k_pos=positions)
    values = (far.double() - near.double()).abs().flatten().tolist()
    return functools.reduce(max, values, 0.0)
