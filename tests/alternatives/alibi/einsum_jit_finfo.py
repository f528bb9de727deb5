"""ALiBi with einsum scores, a TorchScript bias kernel and a finite mask: slopes from
2^(-8 i / n) exponents (closed form for both halves of the rule), the causal mask applied
with masked_fill(torch.finfo(float32).min) (every causal row keeps its own key, so masked
keys still get exactly zero weight), einsum for q k^T and weights v."""
import math

import torch


def alibi_slopes(n_heads):
    n = int(n_heads)
    if n < 1:
        raise ValueError(f"need n_heads >= 1, got n_heads={n_heads}")
    p = 1 << (n.bit_length() - 1)                         # largest power of two <= n
    main = torch.arange(1, p + 1, dtype=torch.float64) * (-8.0 / p)
    extra = (2 * torch.arange(n - p, dtype=torch.float64) + 1) * (-8.0 / (2 * p))   # odd steps 1, 3, 5, ...
    return torch.exp2(torch.cat((main, extra))).float()


@torch.jit.script
def _bias(slopes: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    dist = (q_pos.to(torch.float64).unsqueeze(1) - k_pos.to(torch.float64).unsqueeze(0)).abs()
    return slopes.unsqueeze(-1).unsqueeze(-1) * dist.to(slopes.dtype).neg()


def alibi_bias(slopes, q_pos, k_pos):
    if slopes.dim() != 1 or q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError("slopes, q_pos, k_pos: each must be 1-D")
    return _bias(slopes, q_pos.to(slopes.device), k_pos.to(slopes.device))


def alibi_attention(q, k, v, causal=True):
    *_, H, t_q, d = q.shape
    t_k = k.shape[-2]
    if t_k < t_q:
        raise ValueError(f"T_q={t_q} exceeds T_k={t_k}: q has more queries than k has keys")
    pos = torch.arange(t_k, device=q.device)
    scores = torch.einsum("...hid,...hjd->...hij", q.float(), k.float()) / math.sqrt(d)
    scores = scores + alibi_bias(alibi_slopes(H).to(q.device), pos[t_k - t_q:], pos)
    if causal:
        future = pos.view(1, -1) > pos[t_k - t_q:].view(-1, 1)
        scores = scores.masked_fill(future, torch.finfo(torch.float32).min)
    w = torch.softmax(scores, dim=-1)
    return torch.einsum("...hij,...hjd->...hid", w, v.float()).to(q.dtype)
