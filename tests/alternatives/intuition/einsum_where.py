"""Section 1 in an einsum-everywhere style: scores and outputs through torch.einsum, the
mask applied with torch.where and -inf, a softmax written out by hand (max-shifted exp
over a sum), the working dtype chosen with torch.promote_types, and the shift gap as an
infinity norm read with .item()."""
import math

import torch


def attention(q, k, v, mask=None, bias=None):
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k disagree on the feature size: q {list(q.shape)}, k {list(k.shape)}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v must have one row per key of k: k {list(k.shape)}, v {list(v.shape)}")
    work = torch.promote_types(q.dtype, torch.float32)
    scores = torch.einsum("...id,...jd->...ij", q.to(work), k.to(work)) * (1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        scores = scores + bias.to(device=scores.device, dtype=work)
    if mask is not None:
        allowed = mask.to(device=scores.device, dtype=torch.bool)
        scores = torch.where(allowed, scores, torch.tensor(-math.inf, dtype=work, device=scores.device))
    top = scores.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    expd = torch.exp(scores - top)
    total = expd.sum(dim=-1, keepdim=True)
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    weights = torch.where(total > 0, expd / safe_total, torch.zeros_like(expd))
    out = torch.einsum("...ij,...jd->...id", weights, v.to(work))
    return out.to(q.dtype), weights.to(q.dtype)


def causal_mask(t_q, t_k=None):
    if t_k is None:
        t_k = t_q
    if t_q < 1:
        raise ValueError(f"t_q={t_q}: need at least one query")
    if t_k < t_q:
        raise ValueError(f"t_k={t_k} is smaller than t_q={t_q}; the queries are the last t_q keys")
    rows = torch.arange(t_q).unsqueeze(1)
    cols = torch.arange(t_k).unsqueeze(0)
    return torch.where(cols - rows <= t_k - t_q, True, False)


def shift_gap(score_fn, q, k, positions, shift):
    moved = positions + shift
    diff = score_fn(q, k, moved, moved) - score_fn(q, k, positions, positions)
    return torch.linalg.vector_norm(diff.to(torch.float64).flatten(), ord=math.inf).item()
