"""A correct cached ALiBi attention with explicit Python loops over rows, heads and queries, positions
counted from the mask token by token, the slopes written out from the paper, and a cache preallocated
then filled by slices."""
import math

import torch


def paper_slopes(n):
    power = 1
    while power * 2 <= n:
        power *= 2
    own = [2 ** (-8 * (i + 1) / power) for i in range(power)]
    finer = [2 ** (-8 * (i + 1) / (2 * power)) for i in range(2 * power)]
    return own + finer[0::2][: n - power]


def cached_alibi_attention(q, k, v, attention_mask, cache=None):
    batch, heads, new, d = q.shape
    past = 0 if cache is None else cache[0].shape[2]
    if list(attention_mask.shape) != [batch, past + new]:
        raise ValueError("attention_mask must have one column per cached and new token")
    keys = torch.zeros(batch, heads, past + new, d, dtype=k.dtype)
    values = torch.zeros(batch, heads, past + new, v.shape[-1], dtype=v.dtype)
    if cache is not None:
        keys[:, :, :past], values[:, :, :past] = cache
    keys[:, :, past:], values[:, :, past:] = k, v
    slopes = paper_slopes(heads)
    out = torch.zeros(batch, heads, new, v.shape[-1], dtype=torch.float64)
    for b in range(batch):
        real, positions, count = [bool(m) for m in attention_mask[b].tolist()], [], 0
        for is_real in real:
            positions.append(count if is_real else 0)
            count += is_real
        for h in range(heads):
            for i in range(new):
                col = past + i
                scores = {}
                for j in range(col + 1):
                    if real[j]:
                        dot = float(q[b, h, i].double() @ keys[b, h, j].double()) / math.sqrt(d)
                        scores[j] = dot - slopes[h] * abs(positions[col] - positions[j])
                if scores:
                    top = max(scores.values())
                    norm = sum(math.exp(s - top) for s in scores.values())
                    for j, s in scores.items():
                        out[b, h, i] += math.exp(s - top) / norm * values[b, h, j].double()
    return out.to(q.dtype), (keys, values)
