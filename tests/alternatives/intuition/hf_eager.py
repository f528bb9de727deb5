"""Attention the way Hugging Face's eager_attention_forward does it: scores in float32,
an additive mask of the dtype's most negative value, softmax with dtype=torch.float32,
then the weights cast back to the input's dtype and multiplied with v in that dtype
(angles/softmax in float32 as the contract asks; the final weighted sum in the input
dtype). Rows with no allowed key are zeroed afterwards."""
import math

import torch
import torch.nn.functional as F


def attention(q, k, v, mask=None, bias=None):
    if q.shape[-1] != k.shape[-1]:
        raise ValueError("q and k must have the same head dimension")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError("v must have as many positions as k")
    scaling = q.shape[-1] ** -0.5
    attn_weights = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scaling
    if bias is not None:
        attn_weights = attn_weights + bias.float()
    if mask is not None:
        additive = torch.zeros(mask.shape, dtype=torch.float32, device=q.device)
        additive = additive.masked_fill(~mask.bool(), torch.finfo(torch.float32).min)
        attn_weights = attn_weights + additive
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32)
    if mask is not None:
        attn_weights = attn_weights * mask.bool().any(dim=-1, keepdim=True)
    attn_weights = attn_weights.to(q.dtype)
    attn_output = torch.matmul(attn_weights, v.to(q.dtype))
    return attn_output, attn_weights


def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    if t_q < 1:
        raise ValueError(f"t_q must be >= 1 (got {t_q})")
    if t_k < t_q:
        raise ValueError(f"cannot have t_q={t_q} queries over t_k={t_k} keys")
    cache_position = torch.arange(t_k - t_q, t_k)
    return torch.arange(t_k)[None, :] <= cache_position[:, None]


def shift_gap(score_fn, q, k, positions, shift):
    shifted = torch.add(positions, shift)
    return float(torch.max(torch.abs(score_fn(q, k, shifted, shifted) - score_fn(q, k, positions, positions))))
