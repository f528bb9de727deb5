"""Section 7, ALiBi: reference solutions.

This module is the single source of the solution cells in source_notebooks/07_alibi:
`python -m course.build` copies each definition into its tagged cell.
"""
import math

import torch


def alibi_slopes(n_heads):
    """Per-head slopes of ALiBi (Press et al.), float32 of shape (n_heads,).

    For a power of two n: the geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8).
    Otherwise: the slopes of the largest power of two below n, then every other
    slope of the next power of two, until there are n.
    """
    ### BEGIN SOLUTION
    if n_heads < 1:
        raise ValueError(f"n_heads must be at least 1, got n_heads={n_heads}")

    def geometric(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    closest = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = geometric(closest) + geometric(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)
    ### END SOLUTION


def alibi_bias(slopes, q_pos, k_pos):
    """Bias (H, T_q, T_k) with entry -slopes[h] * |q_pos[i] - k_pos[j]|, in the slopes' dtype."""
    ### BEGIN SOLUTION
    if slopes.dim() != 1 or q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError("slopes, q_pos and k_pos must all be 1-D")
    distance = (q_pos.to(torch.float64)[:, None] - k_pos.to(torch.float64)[None, :]).abs()
    return -slopes[:, None, None] * distance.to(device=slopes.device, dtype=slopes.dtype)
    ### END SOLUTION


def alibi_attention(q, k, v, causal=True):
    """Attention with ALiBi: q (..., H, T_q, d), k (..., H, T_k, d), v (..., H, T_k, d_v).

    Queries are the last T_q positions of the T_k keys. With causal=True, keys after a
    query are masked out (as a mask, not through the bias).
    """
    ### BEGIN SOLUTION
    n_heads, t_q, d = q.shape[-3:]
    t_k = k.shape[-2]
    if t_q > t_k:
        raise ValueError(f"q has more queries (T_q={t_q}) than k has keys (T_k={t_k})")
    if k.shape[-1] != d or v.shape[-2] != t_k:
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    k_pos = torch.arange(t_k, device=q.device)
    q_pos = k_pos[t_k - t_q:]
    bias = alibi_bias(alibi_slopes(n_heads).to(q.device), q_pos, k_pos)
    scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(d) + bias
    if causal:
        allowed = k_pos[None, :] <= q_pos[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ v.float()).to(q.dtype)
    ### END SOLUTION


def cached_alibi_attention(q, k, v, attention_mask, cache=None):
    """One step of causal ALiBi attention with a KV cache, on a (possibly left-padded) batch.

    q, k (B, H, T_new, d) are the new tokens' queries and keys; v (B, H, T_new, d_v).
    attention_mask (B, T_past + T_new), 0/1 or bool, covers the cached tokens and then the new ones.
    A real token's position is the number of real tokens before it in its row; the bias is
    -slopes[h] * |pos_q - pos_k| with slopes alibi_slopes(H). cache is None or the (keys, values)
    a previous call returned. Returns (out (B, H, T_new, d_v) in q's dtype, (keys, values)).
    """
    ### BEGIN SOLUTION
    n_heads, t_new, d = q.shape[-3:]
    past_k, past_v = cache if cache is not None else (k[..., :0, :], v[..., :0, :])
    t_past = past_k.shape[-2]
    mask = torch.as_tensor(attention_mask, device=q.device).bool()
    if mask.dim() != 2 or mask.shape[-1] != t_past + t_new:
        raise ValueError(f"attention_mask of shape {tuple(mask.shape)} must be (B, T_past + T_new) = "
                         f"({q.shape[0]}, {t_past} + {t_new})")
    positions = (mask.long().cumsum(-1) - 1).masked_fill(~mask, 0)  # position_ids_from_mask (notebook 02)
    q_positions = positions[:, t_past:]                             # next_position_ids: (B, T_new)
    keys, values = torch.cat((past_k, k), dim=-2), torch.cat((past_v, v), dim=-2)
    slopes = alibi_slopes(n_heads).to(q.device)
    bias = torch.stack([alibi_bias(slopes, qp, kp) for qp, kp in zip(q_positions, positions)])
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = q.to(work) @ keys.to(work).transpose(-1, -2) / math.sqrt(d) + bias.to(work)
    causal = torch.arange(t_past + t_new, device=q.device) <= t_past + torch.arange(t_new, device=q.device)[:, None]
    allowed = causal & mask[:, None, None, :]
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)
    return (weights @ values.to(work)).to(q.dtype), (keys, values)
    ### END SOLUTION
