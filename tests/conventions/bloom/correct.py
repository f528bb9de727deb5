"""BLOOM style ALiBi: build_alibi_tensor(attention_mask, num_heads, dtype) -> (batch * heads, 1, T)
holding slope * key position."""
import math

import torch


def _get_alibi_slopes(num_heads, device):
    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = [2.0 ** (-8.0 * i / closest) for i in range(1, closest + 1)]
    slopes += [2.0 ** (-8.0 * i / (2 * closest)) for i in range(1, 2 * (num_heads - closest), 2)]
    return torch.tensor(slopes, device=device, dtype=torch.float32)


def build_alibi_tensor(attention_mask, num_heads, dtype):
    batch_size, seq_length = attention_mask.shape
    slopes = _get_alibi_slopes(num_heads, attention_mask.device)
    positions = ((attention_mask.cumsum(dim=-1) - 1) * attention_mask)[:, None, :]
    alibi = slopes[None, :, None] * positions
    return alibi.reshape(batch_size * num_heads, 1, seq_length).to(dtype)
