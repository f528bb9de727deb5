"""Relative positions with TorchScript, vmap and einsum: the T5 bucket is a scripted kernel
(Python wrapper validates), the bias is torch.vmap of a per-head lookup over the table's
columns, and Shaw's terms are einsums over a materialised (T_q, T_k, d) relative table."""
import math

import torch


@torch.jit.script
def _bucket(rel: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int) -> torch.Tensor:
    n = num_buckets
    ret = torch.zeros_like(rel)
    if bidirectional:
        n = n // 2
        ret = ret + (rel > 0).long() * n
        dist = rel.abs()
    else:
        dist = (-rel).clamp(min=0)
    exact = n // 2
    small = dist < exact
    big = exact + (torch.log(dist.float() / exact) / math.log(float(max_distance) / exact) * (n - exact)).long()
    big = torch.clamp(big, max=n - 1)
    return ret + torch.where(small, dist, big)


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    n = num_buckets // 2 if bidirectional else num_buckets
    if n < 2:
        raise ValueError(f"num_buckets={num_buckets}: too few buckets")
    if max_distance <= n // 2:
        raise ValueError(f"max_distance={max_distance}: must be larger than {n // 2}")
    rel = torch.as_tensor(relative_position).long()
    return _bucket(rel, bool(bidirectional), int(num_buckets), int(max_distance))


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if table.dim() != 2:
        raise ValueError("table must have shape (num_buckets, H)")
    rel = torch.sub(k_pos.long().unsqueeze(0), q_pos.long().unsqueeze(1)).to(table.device)
    buckets = t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance)
    return torch.vmap(lambda column: column[buckets], in_dims=1)(table)


def _rel_table(rel, t_q, t_k, K, dtype, device):
    i = torch.arange(t_k - t_q, t_k, device=device)
    j = torch.arange(t_k, device=device)
    idx = (j.unsqueeze(0) - i.unsqueeze(1)).clamp(-K, K) + K
    return rel.to(device=device, dtype=dtype)[idx]              # (T_q, T_k, width)


def _shapes(q, k, rel, K, width, name):
    if q.shape[-2] > k.shape[-2]:
        raise ValueError(f"T_q={q.shape[-2]} > T_k={k.shape[-2]}: q cannot have more queries than k has keys")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError("q and k must share d")
    if rel.shape != (2 * K + 1, width):
        raise ValueError(f"{name}: expected shape ({2 * K + 1}, {width}), got {tuple(rel.shape)}")


def shaw_relative_scores(q, k, rel_k, max_distance):
    _shapes(q, k, rel_k, max_distance, q.shape[-1], "rel_k")
    t_q, t_k = q.shape[-2], k.shape[-2]
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    qw = q.to(wide)
    R = _rel_table(rel_k, t_q, t_k, max_distance, wide, q.device)
    s = torch.einsum("...id,...jd->...ij", qw, k.to(wide)) + torch.einsum("...id,ijd->...ij", qw, R)
    return (s * (1.0 / math.sqrt(q.shape[-1]))).to(q.dtype)


def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    _shapes(q, k, rel_k, max_distance, q.shape[-1], "rel_k")
    _shapes(q, k, rel_v, max_distance, v.shape[-1], "rel_v")
    t_q, t_k = q.shape[-2], k.shape[-2]
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    w = shaw_relative_scores(q.to(wide), k, rel_k, max_distance).softmax(dim=-1)
    Rv = _rel_table(rel_v, t_q, t_k, max_distance, wide, q.device)
    out = torch.einsum("...ij,...jd->...id", w, v.to(wide)) + torch.einsum("...ij,ijd->...id", w, Rv)
    return out.to(q.dtype)
