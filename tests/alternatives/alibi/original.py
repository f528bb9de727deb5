"""A correct ALiBi written another way: the BLOOM-style closed form and an explicit loop."""
import math

import torch


def alibi_slopes(n_heads):
    if n_heads < 1:
        raise ValueError("n_heads must be positive")
    closest = 2 ** math.floor(math.log2(n_heads))
    base = 2 ** (-(2 ** -(math.log2(closest) - 3)))
    slopes = torch.pow(torch.tensor(base, dtype=torch.float64), torch.arange(1, closest + 1))
    if closest != n_heads:
        extra_base = 2 ** (-(2 ** -(math.log2(2 * closest) - 3)))
        remaining = min(closest, n_heads - closest)
        extra = torch.pow(torch.tensor(extra_base, dtype=torch.float64), torch.arange(1, 1 + 2 * remaining, 2))
        slopes = torch.cat([slopes, extra])
    return slopes.float()


def alibi_bias(slopes, q_pos, k_pos):
    rows = []
    for slope in slopes:
        rows.append(-slope * (q_pos.reshape(-1, 1) - k_pos.reshape(1, -1)).abs().to(slopes.dtype))
    return torch.stack(rows)


def alibi_attention(q, k, v, causal=True):
    t_q, t_k = q.shape[-2], k.shape[-2]
    if t_q > t_k:
        raise ValueError("q is longer than k")
    offset = t_k - t_q
    q_pos = torch.arange(offset, t_k, device=q.device)
    k_pos = torch.arange(t_k, device=q.device)
    scores = torch.matmul(q.to(torch.float32), k.to(torch.float32).transpose(-2, -1)) * q.shape[-1] ** -0.5
    scores = scores + alibi_bias(alibi_slopes(q.shape[-3]).to(q.device), q_pos, k_pos)
    if causal:
        scores = torch.where(k_pos[None, :] <= q_pos[:, None], scores, torch.full_like(scores, -math.inf))
    return torch.matmul(scores.softmax(-1), v.to(torch.float32)).to(q.dtype)
