"""ALiBi with plain Python loops: slopes from the paper's get_slopes written with lists,
the bias filled head by head from Python-float distances (.tolist()), and attention
looping over heads with one masked softmax per head."""
import math

import torch


def _get_slopes(n):
    def power_of_2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        ratio = start
        return [start * ratio ** i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + _get_slopes(2 * closest)[0::2][: n - closest]


def alibi_slopes(n_heads):
    n_heads = int(n_heads)
    if n_heads < 1:
        raise ValueError("n_heads must be >= 1")
    return torch.tensor(_get_slopes(n_heads), dtype=torch.float32)


def alibi_bias(slopes, q_pos, k_pos):
    qs, ks = q_pos.tolist(), k_pos.tolist()
    dist = [[abs(a - b) for b in ks] for a in qs]
    d = torch.tensor(dist, dtype=torch.float64, device=slopes.device).reshape(len(qs), len(ks))
    return torch.stack([-slopes[h] * d.to(slopes.dtype) for h in range(slopes.shape[0])]) if slopes.shape[0] \
        else slopes.new_zeros(0, len(qs), len(ks))


def alibi_attention(q, k, v, causal=True):
    n_heads, t_q, dim = q.shape[-3], q.shape[-2], q.shape[-1]
    t_k = k.shape[-2]
    if t_q > t_k:
        raise ValueError(f"q (T_q={t_q}) must not have more positions than k (T_k={t_k})")
    slopes = _get_slopes(n_heads)
    first = t_k - t_q
    dist = torch.tensor([[float(abs(first + i - j)) for j in range(t_k)] for i in range(t_q)], device=q.device)
    allowed = torch.tensor([[j <= first + i for j in range(t_k)] for i in range(t_q)], device=q.device)
    outs = []
    for h in range(n_heads):
        qh, kh, vh = q[..., h, :, :].float(), k[..., h, :, :].float(), v[..., h, :, :].float()
        s = qh @ kh.transpose(-1, -2) / math.sqrt(dim) - slopes[h] * dist
        if causal:
            s = s.masked_fill(~allowed, -math.inf)
        outs.append(torch.softmax(s, dim=-1) @ vh)
    return torch.stack(outs, dim=-3).to(q.dtype)
