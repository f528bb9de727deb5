"""A correct cached RoPE attention that keeps the keys *unrotated* in its cache and rotates every
key again at each step (positions recomputed from the whole mask), in Hugging Face's rotate_half
style, with PyTorch's fused scaled_dot_product_attention and a boolean mask."""
import torch
import torch.nn.functional as F


def rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotary(x, position_ids, base):
    """x (B, H, T, d) rotated at position_ids (B, T), GPT-NeoX pairs."""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    freqs = position_ids[:, None, :, None].float() * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return x.float() * emb.cos() + rotate_half(x.float()) * emb.sin()


def cached_rope_attention(q, k, v, attention_mask, cache=None, base=10000.0):
    if q.shape[-1] % 2:
        raise ValueError(f"head size d={q.shape[-1]} is odd")
    if cache is None:
        keys, values = k, v
    else:
        keys, values = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    total, new = keys.shape[2], q.shape[2]
    if attention_mask.shape[-1] != total:
        raise ValueError(f"attention_mask has {attention_mask.shape[-1]} columns for {total} tokens")
    real = attention_mask.to(torch.bool)
    position_ids = torch.clamp(real.long().cumsum(-1) - 1, min=0)
    q_rot = rotary(q, position_ids[:, -new:], base)
    k_rot = rotary(keys, position_ids, base)
    query_cols = torch.arange(total - new, total, device=q.device)
    allowed = (torch.arange(total, device=q.device)[None, :] <= query_cols[:, None]) & real[:, None, None, :]
    out = F.scaled_dot_product_attention(q_rot, k_rot, values.float(), attn_mask=allowed)
    return torch.nan_to_num(out).to(q.dtype), (keys, values)
