"""Relative bias and Shaw attention with plain Python loops over (query, key) pairs: each
score is a dot product of a query with a key plus one relative row picked by Python-int
arithmetic; the T5 bias reads one table row per pair (torch.stack keeps the table's
graph). The bucket itself is T5's formula evaluated per entry with float32 tensors."""
import math

import torch


def _one_bucket(r, bidirectional, num_buckets, max_distance):
    n, offset = num_buckets, 0
    if bidirectional:
        n //= 2
        offset = n if r > 0 else 0
        dist = abs(r)
    else:
        dist = max(-r, 0)
    exact = n // 2
    if dist < exact:
        return offset + dist
    scaled = torch.log(torch.tensor(float(dist), dtype=torch.float32) / exact) / math.log(max_distance / exact)
    return offset + min(exact + int((scaled * (n - exact)).item()), n - 1)


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    rel = torch.as_tensor(relative_position)
    n = num_buckets // 2 if bidirectional else num_buckets
    if n // 2 < 1 or max_distance <= n // 2:
        raise ValueError("num_buckets or max_distance too small for T5's log buckets")
    cache = {}
    out = []
    for r in rel.reshape(-1).tolist():
        r = int(r)
        if r not in cache:
            cache[r] = _one_bucket(r, bidirectional, num_buckets, max_distance)
        out.append(cache[r])
    return torch.tensor(out, dtype=torch.long, device=rel.device).reshape(rel.shape)


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if table.dim() != 2:
        raise ValueError("table must be 2-D: (num_buckets, H)")
    qs, ks = q_pos.tolist(), k_pos.tolist()
    rel = torch.tensor([[kj - qi for kj in ks] for qi in qs], dtype=torch.long).reshape(len(qs), len(ks))
    buckets = t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance).tolist()
    rows = [torch.stack([table[b] for b in row]) if row else table.new_zeros(0, table.shape[1]) for row in buckets]
    stacked = torch.stack(rows) if rows else table.new_zeros(0, len(ks), table.shape[1])
    return stacked.permute(2, 0, 1)


def _rel_row(i, j, t_q, t_k, K):
    offset = j - (t_k - t_q + i)
    return max(-K, min(K, offset)) + K


def shaw_relative_scores(q, k, rel_k, max_distance):
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if t_q > t_k:
        raise ValueError("q has more positions than k (queries are aligned to the end of the keys)")
    if k.shape[-1] != d or list(rel_k.shape) != [2 * max_distance + 1, d]:
        raise ValueError(f"rel_k should be ({2 * max_distance + 1}, {d}) and k should have d={d}")
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    qw, kw, rw = q.to(wide), k.to(wide), rel_k.to(device=q.device, dtype=wide)
    rows = []
    for i in range(t_q):
        cols = []
        for j in range(t_k):
            key = kw[..., j, :] + rw[_rel_row(i, j, t_q, t_k, max_distance)]
            cols.append((qw[..., i, :] * key).sum(-1))
        rows.append(torch.stack(cols, dim=-1))
    return (torch.stack(rows, dim=-2) / math.sqrt(d)).to(q.dtype)


def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    t_q, t_k = q.shape[-2], k.shape[-2]
    if list(rel_v.shape) != [2 * max_distance + 1, v.shape[-1]]:
        raise ValueError(f"rel_v should be ({2 * max_distance + 1}, {v.shape[-1]})")
    wide = torch.float64 if q.dtype == torch.float64 else torch.float32
    w = torch.softmax(shaw_relative_scores(q.to(wide), k, rel_k, max_distance), dim=-1)
    vw, rv = v.to(wide), rel_v.to(device=q.device, dtype=wide)
    outs = []
    for i in range(t_q):
        acc = 0
        for j in range(t_k):
            acc = acc + w[..., i, j, None] * (vw[..., j, :] + rv[_rel_row(i, j, t_q, t_k, max_distance)])
        outs.append(acc)
    return torch.stack(outs, dim=-2).to(q.dtype)
