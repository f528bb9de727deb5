"""Section 1 with plain Python loops: attention loops over every batch entry and every query
row (one small vector softmax per row, masked keys skipped explicitly), the causal mask is a
nested list comprehension, and the shift gap is a max over .tolist() values."""
import math

import torch


def attention(q, k, v, mask=None, bias=None):
    t_q, d = q.shape[-2], q.shape[-1]
    t_k = k.shape[-2]
    if k.shape[-1] != d:
        raise ValueError("q and k must have the same last dimension d")
    if v.shape[-2] != t_k:
        raise ValueError("k and v must have the same number of rows (keys)")
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    full = tuple(batch) + (t_q, t_k)
    if mask is not None:
        full = tuple(torch.broadcast_shapes(full, mask.shape))
    if bias is not None:
        full = tuple(torch.broadcast_shapes(full, bias.shape))
    batch = full[:-2]
    n = 1
    for size in batch:
        n *= size
    qs = q.to(wide).expand(*batch, t_q, d).reshape(n, t_q, d)
    ks = k.to(wide).expand(*batch, t_k, d).reshape(n, t_k, d)
    vs = v.to(wide).expand(*batch, t_k, v.shape[-1]).reshape(n, t_k, v.shape[-1])
    ms = None if mask is None else mask.to(torch.bool).expand(full).reshape(n, t_q, t_k)
    bs = None if bias is None else bias.to(wide).expand(full).reshape(n, t_q, t_k)
    scale = 1.0 / math.sqrt(d)
    out_rows, weight_rows = [], []
    for b in range(n):
        for i in range(t_q):
            row = (ks[b] @ qs[b, i]) * scale
            if bs is not None:
                row = row + bs[b, i]
            keep = [True] * t_k if ms is None else ms[b, i].tolist()
            chosen = [j for j in range(t_k) if keep[j]]
            w = torch.zeros(t_k, dtype=wide, device=q.device)
            if chosen:
                idx = torch.tensor(chosen, device=q.device)
                w = w.index_put((idx,), torch.softmax(row[idx], dim=0))
            weight_rows.append(w)
            out_rows.append(w @ vs[b])
    weights = torch.stack(weight_rows).reshape(full)
    out = torch.stack(out_rows).reshape(*batch, t_q, v.shape[-1])
    return out.to(q.dtype), weights.to(q.dtype)


def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    if t_q < 1:
        raise ValueError("t_q must be at least 1")
    if t_k < t_q:
        raise ValueError("t_k must not be smaller than t_q")
    offset = t_k - t_q
    return torch.tensor([[j <= offset + i for j in range(t_k)] for i in range(t_q)], dtype=torch.bool)


def shift_gap(score_fn, q, k, positions, shift):
    shifted = positions + shift
    after = score_fn(q, k, shifted, shifted).tolist()
    before = score_fn(q, k, positions, positions).tolist()
    gap = 0.0
    for row_a, row_b in zip(after, before):
        for a, b in zip(row_a, row_b):
            gap = max(gap, abs(a - b))
    return gap
