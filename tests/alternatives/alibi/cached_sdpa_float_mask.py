"""A correct cached ALiBi attention through PyTorch's fused scaled_dot_product_attention with one
additive float mask (bias, and -inf where a key is padding or in the future). Positions are the
column indices, padding counted for queries and keys alike: a constant shift per row, which ALiBi
does not see. Slopes as in BLOOM's code (closest power of two, then every other extra slope)."""
import math

import torch
import torch.nn.functional as F


def bloom_style_slopes(n):
    closest = 2 ** math.floor(math.log2(n))
    base = 2 ** (-(2 ** -(math.log2(closest) - 3)))
    slopes = [base ** i for i in range(1, closest + 1)]
    if closest != n:
        extra = 2 ** (-(2 ** -(math.log2(2 * closest) - 3)))
        slopes += [extra ** i for i in range(1, 2 * (n - closest), 2)]
    return torch.tensor(slopes)


def cached_alibi_attention(q, k, v, attention_mask, cache=None):
    keys = k if cache is None else torch.cat([cache[0], k], dim=2)
    values = v if cache is None else torch.cat([cache[1], v], dim=2)
    total, new = keys.shape[2], q.shape[2]
    if attention_mask.shape != (q.shape[0], total):
        raise ValueError(f"attention_mask should be ({q.shape[0]}, {total}), got {tuple(attention_mask.shape)}")
    cols = torch.arange(total, device=q.device, dtype=torch.float32)
    q_cols = cols[total - new:]
    bias = -bloom_style_slopes(q.shape[1]).to(q.device)[:, None, None] * (q_cols[:, None] - cols[None, :]).abs()
    blocked = (cols[None, :] > q_cols[:, None])[None, None] | (attention_mask == 0)[:, None, None, :]
    additive = bias[None].masked_fill(blocked, float("-inf"))
    out = F.scaled_dot_product_attention(q.float(), keys.float(), values.float(), attn_mask=additive)
    return out.nan_to_num().to(q.dtype), (keys, values)
