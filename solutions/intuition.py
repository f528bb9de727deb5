"""Section 1, Intuition: reference solutions.

This module is the single source of the solution cells in source_notebooks/01_intuition:
`python -m course.build` copies each definition into its tagged cell.
"""
import math

import torch


def attention(q, k, v, mask=None, bias=None):
    """Scaled dot-product attention. Returns (out, weights).

    q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v). Scores are q k^T / sqrt(d) + bias;
    `mask` (bool, broadcastable to (..., T_q, T_k), True = may attend) removes keys before
    the softmax over keys. A query with no allowed key gets all-zero weights and output.
    The softmax runs in float32 (float64 for float64 input); out and weights have q's dtype.
    """
    ### BEGIN SOLUTION
    d, t_q, t_k = q.shape[-1], q.shape[-2], k.shape[-2]
    if k.shape[-1] != d:
        raise ValueError(f"q and k must share their last dimension, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if v.shape[-2] != t_k:
        raise ValueError(f"v must have one row per key: k {tuple(k.shape)}, v {tuple(v.shape)}")
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = q.to(work) @ k.to(work).transpose(-1, -2) / math.sqrt(d)
    for name, extra in (("bias", bias), ("mask", mask)):
        if extra is None:
            continue
        if name == "mask" and extra.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = may attend), got dtype {extra.dtype}")
        try:
            torch.broadcast_shapes(extra.shape, scores.shape[:-2] + (t_q, t_k))
        except RuntimeError:
            raise ValueError(f"{name} of shape {tuple(extra.shape)} does not broadcast to the scores "
                             f"{tuple(scores.shape)}") from None
        if name == "bias":
            scores = scores + bias.to(device=scores.device, dtype=work)
        else:
            scores = scores.masked_fill(~mask.to(scores.device), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    # A row whose scores are all -inf has no allowed key: softmax gives 0/0 = NaN there.
    nothing_allowed = scores.amax(dim=-1, keepdim=True) == float("-inf")
    weights = weights.masked_fill(nothing_allowed, 0.0)
    out = weights @ v.to(work)
    return out.to(q.dtype), weights.to(q.dtype)
    ### END SOLUTION


def causal_mask(t_q, t_k=None):
    """Bool (t_q, t_k) mask, True where key j may be seen by query i: j <= t_k - t_q + i.

    Queries are the last t_q of the t_k positions (cached decoding); t_k defaults to t_q.
    """
    ### BEGIN SOLUTION
    t_k = t_q if t_k is None else t_k
    if t_q < 1:
        raise ValueError(f"t_q must be at least 1, got t_q={t_q}")
    if t_k < t_q:
        raise ValueError(f"t_k must be at least t_q (queries are the last t_q keys), got t_q={t_q}, t_k={t_k}")
    q_pos = torch.arange(t_k - t_q, t_k)
    k_pos = torch.arange(t_k)
    return k_pos[None, :] <= q_pos[:, None]
    ### END SOLUTION


def shift_gap(score_fn, q, k, positions, shift):
    """Largest |score_fn(q, k, positions + shift, positions + shift) - score_fn(q, k, positions, positions)|.

    q, k are (T, d), positions (T,); score_fn(q, k, q_pos, k_pos) returns (T_q, T_k) scores.
    Zero (up to rounding) for a relative scheme; positive for an absolute one.
    """
    ### BEGIN SOLUTION
    if q.dim() != 2 or k.dim() != 2:
        raise ValueError(f"q and k must be (T, d), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if positions.dim() != 1 or positions.shape[0] != q.shape[0] or positions.shape[0] != k.shape[0]:
        raise ValueError(f"positions must be (T,) with T = {q.shape[0]}, got {tuple(positions.shape)}")
    before = score_fn(q, k, positions, positions)
    shifted = positions + shift
    after = score_fn(q, k, shifted, shifted)
    return float((after.double() - before.double()).abs().max())
    ### END SOLUTION
