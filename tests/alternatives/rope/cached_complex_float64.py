"""A correct cached RoPE attention with complex numbers (Meta's style, half-split pairs as real and
imaginary parts), everything in float64, positions counted from 1 (torch.cumsum of the mask, as some
libraries number them: a constant shift RoPE does not see), an additive float mask."""
import math

import torch


def cached_rope_attention(q, k, v, attention_mask, cache=None, base=10000.0):
    d = q.size(-1)
    if d % 2:
        raise ValueError(f"cannot pair the features of an odd d = {d}")
    past_k, past_v = cache if cache is not None else (None, None)
    t_past = 0 if past_k is None else past_k.size(-2)
    t_new = q.size(-2)
    if attention_mask.size(-1) != t_past + t_new:
        raise ValueError("attention_mask must cover the cached tokens and the new ones")
    mask = attention_mask != 0
    positions = mask.cumsum(dim=-1).double()[:, t_past:]                        # 1, 2, 3, ... on real tokens
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    turn = torch.polar(torch.ones((), dtype=torch.float64), positions[:, None, :, None] * theta)  # (B, 1, T_new, d/2)

    def rope(x):
        x = x.double()
        z = torch.complex(x[..., : d // 2], x[..., d // 2:]) * turn
        return torch.cat((z.real, z.imag), dim=-1)

    keys = rope(k).to(k.dtype) if past_k is None else torch.cat((past_k, rope(k).to(k.dtype)), dim=-2)
    values = v if past_v is None else torch.cat((past_v, v), dim=-2)
    cols = torch.arange(t_past + t_new)
    future = cols[None, :] > (t_past + torch.arange(t_new))[:, None]
    blocked = future[None, None] | ~mask[:, None, None, :]
    additive = torch.zeros(blocked.shape, dtype=torch.float64).masked_fill(blocked, -math.inf)
    scores = rope(q) @ keys.double().transpose(-2, -1) / math.sqrt(d) + additive
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return (weights @ values.double()).to(q.dtype), (keys, values)
