"""Relative positions without per-pair index tensors. T5 buckets come from a small lookup
table over distances 0..max_distance (built once per call with T5's float32 log, read
with torch.take, distances past max_distance clamped onto the last entry). Shaw's terms
use the Music Transformer "skew": q times the relative table for every offset
-(T_k-1)..T_k-1, then a pad-and-reshape that shifts row i into key order (and the inverse
skew for the value term)."""
import math

import torch


def _bucket_lut(side, max_distance, device):
    exact = side // 2
    dist = torch.arange(max_distance + 1, device=device)
    far = exact + (torch.log(dist.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
                   * (side - exact)).long()
    return torch.where(dist < exact, dist, far.clamp(max=side - 1))


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    side = num_buckets // 2 if bidirectional else num_buckets
    if side < 2:
        raise ValueError(f"num_buckets={num_buckets} is too small")
    if max_distance <= side // 2:
        raise ValueError(f"max_distance={max_distance} is not above the {side // 2} exact buckets")
    rel = torch.as_tensor(relative_position).to(torch.int64)
    if bidirectional:
        upper = (rel > 0).to(torch.int64) * side
        dist = rel.abs()
    else:
        upper = torch.zeros_like(rel)
        dist = torch.clamp(-rel, min=0)
    lut = _bucket_lut(side, max_distance, rel.device)
    return upper + torch.take(lut, dist.clamp(max=max_distance))


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if table.dim() != 2:
        raise ValueError("table must be (num_buckets, H)")
    rel = k_pos.to(table.device).to(torch.int64).unsqueeze(0) - q_pos.to(table.device).to(torch.int64).unsqueeze(1)
    b = t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance)
    return table.t()[:, b]


def _check(q, k, rel, K, name):
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if k.shape[-1] != d:
        raise ValueError("q and k must have the same d")
    if t_q > t_k:
        raise ValueError(f"T_q={t_q} queries but only T_k={t_k} keys in k")
    if K < 0 or rel.dim() != 2 or rel.shape[0] != 2 * K + 1:
        raise ValueError(f"{name} must have 2*max_distance+1 = {2 * K + 1} rows, got shape {tuple(rel.shape)}")


def _per_offset(rel, t_k, K, dtype, device):
    # row c is the table row for offset r = c - (t_k - 1), clipped to [-K, K]
    r = torch.arange(-(t_k - 1), t_k, device=device)
    return rel.to(device=device, dtype=dtype).index_select(0, r.clamp(-K, K) + K)   # (2 t_k - 1, .)


def _skew(logits, t_q, t_k):
    """(..., t_q, 2 t_k - 1) by offset -> (..., t_q, t_k) by key, query i at t_k - t_q + i."""
    batch = logits.shape[:-2]
    padded = torch.nn.functional.pad(logits, (0, 1))                        # width 2 t_k
    flat = padded.reshape(*batch, t_q * 2 * t_k)
    start = t_q - 1
    return flat[..., start:start + t_q * (2 * t_k - 1)].reshape(*batch, t_q, 2 * t_k - 1)[..., :t_k]


def _unskew(weights, t_q, t_k):
    """Inverse of _skew: (..., t_q, t_k) by key -> (..., t_q, 2 t_k - 1) by offset."""
    batch = weights.shape[:-2]
    wide = torch.nn.functional.pad(weights, (0, t_k - 1))                   # width 2 t_k - 1
    flat = torch.nn.functional.pad(wide.reshape(*batch, t_q * (2 * t_k - 1)), (t_q - 1, 1))
    return flat.reshape(*batch, t_q, 2 * t_k)[..., :-1]


def shaw_relative_scores(q, k, rel_k, max_distance):
    _check(q, k, rel_k, max_distance, "rel_k")
    if rel_k.shape[1] != q.shape[-1]:
        raise ValueError("rel_k must have q's feature size d")
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    qw = q.to(wide)
    E = _per_offset(rel_k, t_k, max_distance, wide, q.device)
    content = qw @ k.to(wide).transpose(-1, -2)
    position = _skew(qw @ E.t(), t_q, t_k)
    return ((content + position) / math.sqrt(d)).to(q.dtype)


def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    _check(q, k, rel_v, max_distance, "rel_v")
    if rel_v.shape[1] != v.shape[-1]:
        raise ValueError("rel_v must have v's feature size d_v")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError("v must have one row per key")
    t_q, t_k = q.shape[-2], k.shape[-2]
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    w = torch.softmax(shaw_relative_scores(q.to(wide), k, rel_k, max_distance), dim=-1)
    Ev = _per_offset(rel_v, t_k, max_distance, wide, q.device)
    out = w @ v.to(wide) + _unskew(w, t_q, t_k) @ Ev
    return out.to(q.dtype)
