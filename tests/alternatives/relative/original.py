"""Correct relative positions written another way: float64 math buckets, loops, materialised tables."""
import math

import torch


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    rel = torch.as_tensor(relative_position)
    flat = rel.reshape(-1).tolist()
    out = []
    for r in flat:
        n = num_buckets
        base = 0
        if bidirectional:
            n //= 2
            if r > 0:
                base = n
            a = abs(r)
        else:
            a = max(0, -r)
        e = n // 2
        if a < e:
            out.append(base + a)
        else:
            out.append(base + min(n - 1, e + int(math.log2(a / e) / math.log2(max_distance / e) * (n - e))))
    return torch.tensor(out, dtype=torch.long, device=rel.device).reshape(rel.shape)


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if table.ndim != 2:
        raise ValueError("table must be 2-D (num_buckets, H)")
    rel = k_pos.reshape(1, -1) - q_pos.reshape(-1, 1)
    b = t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance)
    return torch.nn.functional.embedding(b.to(table.device), table).movedim(-1, 0)


def shaw_relative_scores(q, k, rel_k, max_distance):
    T_q, T_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if T_q > T_k:
        raise ValueError("more queries than keys in q")
    if rel_k.shape != (2 * max_distance + 1, d):
        raise ValueError("rel_k has the wrong shape")
    dt = torch.float64 if q.dtype == torch.float64 else torch.float32
    i = torch.arange(T_q, device=q.device) + (T_k - T_q)
    j = torch.arange(T_k, device=q.device)
    idx = torch.clamp(j[None] - i[:, None], -max_distance, max_distance) + max_distance
    R = rel_k.to(dt)[idx]                     # (T_q, T_k, d)
    qd = q.to(dt)
    s = torch.matmul(qd, k.to(dt).transpose(-2, -1)) + (qd.unsqueeze(-2) * R).sum(-1)
    return (s / d ** 0.5).to(q.dtype)


def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    if rel_v.shape != (2 * max_distance + 1, v.shape[-1]):
        raise ValueError("rel_v has the wrong shape")
    dt = torch.float64 if q.dtype == torch.float64 else torch.float32
    w = shaw_relative_scores(q.to(dt), k, rel_k, max_distance).softmax(-1)
    T_q, T_k = q.shape[-2], k.shape[-2]
    i = torch.arange(T_q, device=q.device) + (T_k - T_q)
    j = torch.arange(T_k, device=q.device)
    idx = torch.clamp(j[None] - i[:, None], -max_distance, max_distance) + max_distance
    out = w @ v.to(dt) + (w.unsqueeze(-1) * rel_v.to(dt)[idx]).sum(-2)
    return out.to(q.dtype)
