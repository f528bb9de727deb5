"""A correct cached ALiBi attention in the key-only form: under the causal mask every allowed key is
at or before its query, so -m|i - j| = -m*i + m*j and the -m*i term is the same for every key of a
query, which the softmax ignores. The bias is m * (key position) alone, positions counted from 1
(cumsum of the mask), in float64 with einsum."""
import math

import torch


def cached_alibi_attention(q, k, v, attention_mask, cache=None):
    if cache is not None:
        k, v = torch.cat((cache[0], k), -2), torch.cat((cache[1], v), -2)
    n_heads, t_new, d = q.shape[1:]
    t_all = k.shape[-2]
    if attention_mask.shape[-1] != t_all:
        raise ValueError(f"attention_mask has {attention_mask.shape[-1]} columns, the cache and new tokens {t_all}")
    real = attention_mask.bool()
    key_pos = real.double().cumsum(-1)
    m = 2.0 ** (-8.0 / 2 ** math.floor(math.log2(n_heads)) * torch.arange(1, n_heads + 1, dtype=torch.float64))
    n = 2 ** math.floor(math.log2(n_heads))
    if n != n_heads:
        m[n:] = 2.0 ** (-4.0 / n * torch.arange(1, 2 * (n_heads - n), 2, dtype=torch.float64))
    scores = torch.einsum("bhid,bhjd->bhij", q.double(), k.double()) / math.sqrt(d)
    scores = scores + m[None, :, None, None] * key_pos[:, None, None, :]
    future = torch.arange(t_all)[None, :] > torch.arange(t_all - t_new, t_all)[:, None]
    scores = scores.masked_fill(future | ~real[:, None, None, :], float("-inf"))
    out = torch.einsum("bhij,bhjd->bhid", torch.softmax(scores, -1).nan_to_num(0.0), v.double())
    return out.to(q.dtype), (k, v)
