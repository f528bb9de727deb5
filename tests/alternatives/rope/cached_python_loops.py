"""A correct cached RoPE attention written with explicit Python loops over rows, heads and queries.
Positions are the column indices, padding counted in the prefill and in every decode step alike:
each row is shifted by its number of padding tokens, which RoPE does not see (only differences of
positions enter a score). The cache is preallocated and filled by slices; pairs are rotated with
math.cos / math.sin on Python floats."""
import math

import torch


def rotate(vec, position, base):
    """One vector (d,) as a list, half-split pairs (k, k + d/2), rotated at `position`."""
    half = len(vec) // 2
    out = list(vec)
    for i in range(half):
        angle = position * base ** (-2.0 * i / len(vec))
        a, b = vec[i], vec[i + half]
        out[i], out[i + half] = a * math.cos(angle) - b * math.sin(angle), a * math.sin(angle) + b * math.cos(angle)
    return out


def cached_rope_attention(q, k, v, attention_mask, cache=None, base=10000.0):
    batch, heads, new, d = q.shape
    if d % 2 == 1:
        raise ValueError("d must be even")
    past = 0 if cache is None else cache[0].shape[2]
    if tuple(attention_mask.shape) != (batch, past + new):
        raise ValueError(f"attention_mask must have shape ({batch}, {past + new})")
    keys = torch.empty(batch, heads, past + new, d, dtype=k.dtype)
    values = torch.empty(batch, heads, past + new, v.shape[-1], dtype=v.dtype)
    if cache is not None:
        keys[:, :, :past] = cache[0]
        values[:, :, :past] = cache[1]
    out = torch.zeros(batch, heads, new, v.shape[-1], dtype=torch.float64)
    for b in range(batch):
        real = [bool(x) for x in attention_mask[b].tolist()]
        for h in range(heads):
            for i in range(new):
                keys[b, h, past + i] = torch.tensor(rotate(k[b, h, i].double().tolist(), past + i, base))
                values[b, h, past + i] = v[b, h, i]
            for i in range(new):
                qi = rotate(q[b, h, i].double().tolist(), past + i, base)
                scores = {j: sum(x * y for x, y in zip(qi, keys[b, h, j].double().tolist())) / math.sqrt(d)
                          for j in range(past + i + 1) if real[j]}
                if not scores:
                    continue
                top = max(scores.values())
                total = sum(math.exp(s - top) for s in scores.values())
                for j, s in scores.items():
                    out[b, h, i] += math.exp(s - top) / total * values[b, h, j].double()
    return out.to(q.dtype), (keys, values)
