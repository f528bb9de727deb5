"""A correct section 1 written another way: additive -inf mask, nan_to_num, tril offsets."""
import math

import torch
import torch.nn.functional as F


def attention(q, k, v, mask=None, bias=None):
    if q.size(-1) != k.size(-1):
        raise ValueError("q and k need the same feature size")
    if k.size(-2) != v.size(-2):
        raise ValueError("v needs as many rows as k")
    dt = q.dtype
    calc = torch.float64 if dt == torch.float64 else torch.float32
    s = torch.matmul(q.to(calc), k.to(calc).transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    if bias is not None:
        s = s + bias
    if mask is not None:
        s = s + torch.zeros_like(mask, dtype=calc).masked_fill(mask.logical_not(), -math.inf)
    w = F.softmax(s, dim=-1)
    w = torch.nan_to_num(w, nan=0.0)
    return torch.matmul(w, v.to(calc)).to(dt), w.to(dt)


def causal_mask(t_q, t_k=None):
    if t_k is None:
        t_k = t_q
    if t_q <= 0:
        raise ValueError("t_q must be positive")
    if t_k < t_q:
        raise ValueError("need t_k >= t_q")
    return torch.tril(torch.ones(t_q, t_k, dtype=torch.bool), diagonal=t_k - t_q)


def shift_gap(score_fn, q, k, positions, shift):
    shifted = positions + shift
    a = score_fn(q, k, shifted, shifted)
    b = score_fn(q, k, positions, positions)
    return (a - b).abs().max().item()
