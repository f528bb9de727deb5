"""ALiBi with torch.vmap over heads: the bias is vmap of one head's -slope * |i - j|, the
attention is vmap over the head axis of a single-head function; inputs are upcast with
torch.promote_types so float64 stays float64 and half types become float32. Slopes are
built by repeatedly taking every other slope of the doubled ladder (a while loop over
powers of two). A query/key length mismatch is reported naming k."""
import math

import torch


def alibi_slopes(n_heads):
    if n_heads < 1:
        raise ValueError(f"n_heads={n_heads}; there must be at least one head")
    n = 1
    while n * 2 <= n_heads:
        n *= 2
    ladder = [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]
    doubled = [2.0 ** (-8.0 * i / (2 * n)) for i in range(1, 2 * n + 1)]
    return torch.tensor(ladder + doubled[0::2][: n_heads - n], dtype=torch.float32)


def alibi_bias(slopes, q_pos, k_pos):
    dist = (q_pos.double()[:, None] - k_pos.double().to(q_pos.device)[None, :]).abs().to(
        device=slopes.device, dtype=slopes.dtype)
    return torch.vmap(lambda s: -s * dist)(slopes)


def alibi_attention(q, k, v, causal=True):
    H, t_q, d = q.shape[-3], q.shape[-2], q.shape[-1]
    t_k = k.shape[-2]
    if t_k < t_q:
        raise ValueError(f"k must hold at least as many positions as there are queries (T_k={t_k} < {t_q})")
    work = torch.promote_types(q.dtype, torch.float32)
    k_pos = torch.arange(t_k, device=q.device)
    q_pos = k_pos[t_k - t_q:]
    bias = alibi_bias(alibi_slopes(H).to(device=q.device, dtype=work), q_pos, k_pos)   # (H, T_q, T_k)
    allowed = k_pos[None, :] <= q_pos[:, None]

    def one_head(qh, kh, vh, bh):
        s = qh @ kh.transpose(-1, -2) / math.sqrt(d) + bh
        if causal:
            s = s.masked_fill(~allowed, float("-inf"))
        return torch.softmax(s, dim=-1) @ vh

    out = torch.vmap(one_head, in_dims=(-3, -3, -3, 0), out_dims=-3)(q.to(work), k.to(work), v.to(work), bias)
    return out.to(q.dtype)
