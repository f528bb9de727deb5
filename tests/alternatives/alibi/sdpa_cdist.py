"""ALiBi through library kernels: MPT's slope generator (a geometric ladder for the next
power of two, odd-then-even interleave when n_heads is not one), distances from
torch.cdist (p=1), and attention through F.scaled_dot_product_attention in float32 with a
float attn_mask = bias plus a -inf causal mask built with torch.where. The bias is computed
in float32 (cdist's usual dtype) and returned in the slopes' dtype, so float64 slopes get
float32 accuracy, which the contract allows."""
import math

import torch
import torch.nn.functional as F


def alibi_slopes(n_heads):
    if n_heads < 1:
        raise ValueError(f"alibi_slopes: n_heads={n_heads} must be at least 1")
    padded = 2 ** math.ceil(math.log2(n_heads))
    m = torch.arange(1, padded + 1, dtype=torch.float64) * (8.0 / padded)
    slopes = 1.0 / torch.pow(2.0, m)
    if padded != n_heads:
        slopes = torch.cat((slopes[1::2], slopes[::2]))[:n_heads]
    return slopes.to(torch.float32)


def alibi_bias(slopes, q_pos, k_pos):
    if slopes.dim() != 1:
        raise ValueError("slopes must be 1-D (H,)")
    dist = torch.cdist(q_pos.to(torch.float32).reshape(-1, 1), k_pos.to(device=q_pos.device,
                                                                       dtype=torch.float32).reshape(-1, 1), p=1)
    bias = -(slopes.float().reshape(-1, 1, 1) * dist.to(slopes.device))     # float32 internals
    return bias.to(slopes.dtype)


def alibi_attention(q, k, v, causal=True):
    H, t_q, d = q.shape[-3], q.shape[-2], q.shape[-1]
    t_k = k.shape[-2]
    if t_q > t_k:
        raise ValueError(f"q has {t_q} queries but k only {t_k} keys; q must not be longer than k")
    if k.shape[-1] != d or v.shape[-2] != t_k:
        raise ValueError("k and v do not fit q")
    k_pos = torch.arange(t_k, device=q.device)
    q_pos = k_pos[t_k - t_q:]
    bias = alibi_bias(alibi_slopes(H).to(q.device), q_pos, k_pos)
    if causal:
        bias = torch.where(k_pos[None, :] <= q_pos[:, None], bias, float("-inf"))
    out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=bias)
    return out.to(q.dtype)
