"""Section 1 with TorchScript kernels: the numeric work is in torch.jit.script functions
(Optional tensors, a finfo-free -inf fill, an explicit empty-row fix), and thin Python
wrappers do the argument checks (a scripted `raise` would surface as torch.jit.Error)."""
import math
from typing import Optional, Tuple

import torch


@torch.jit.script
def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
            bias: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = torch.matmul(q.to(work), k.to(work).transpose(-2, -1)) / math.sqrt(float(q.size(-1)))
    if bias is not None:
        scores = scores + bias.to(work)
    if mask is not None:
        scores = scores.masked_fill(torch.logical_not(mask.to(torch.bool)), float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    scores = scores.masked_fill(empty, 0.0)
    weights = torch.softmax(scores, dim=-1).masked_fill(empty, 0.0)
    out = torch.matmul(weights, v.to(work))
    return out.to(q.dtype), weights.to(q.dtype)


def attention(q, k, v, mask=None, bias=None):
    if k.shape[-1] != q.shape[-1]:
        raise ValueError("shape mismatch: k's last dimension must equal q's (d)")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError("shape mismatch: v needs T_k rows like k")
    return _attend(q, k, v, mask, bias)


@torch.jit.script
def _causal(t_q: int, t_k: int) -> torch.Tensor:
    i = torch.arange(t_q).unsqueeze(-1) + (t_k - t_q)
    j = torch.arange(t_k).unsqueeze(0)
    return j <= i


def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    if int(t_q) < 1:
        raise ValueError("t_q must be >= 1")
    if int(t_k) < int(t_q):
        raise ValueError(f"t_q={t_q} queries cannot sit at the end of only {t_k} keys")
    return _causal(int(t_q), int(t_k))


@torch.jit.script
def _largest_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max().item())


def shift_gap(score_fn, q, k, positions, shift):
    return _largest_gap(score_fn(q, k, positions + shift, positions + shift), score_fn(q, k, positions, positions))
