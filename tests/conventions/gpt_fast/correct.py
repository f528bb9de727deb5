"""gpt-fast style RoPE: a real (cos, sin) cache precompute_freqs_cis(seq_len, n_elem, base) of shape
(seq_len, n_elem/2, 2) whose rows the model picks by input_pos, and apply_rotary_emb(x, freqs_cis) on
(B, T, H, D), pairs (2k, 2k+1); Llama 3.1 scaling through apply_rope_scaling(freqs, rope_scaling).

Source: pytorch-labs/gpt-fast at 32971d3129541c5bfb4f715abc33d1c5f408d204, model.py.

Signatures: precompute_freqs_cis(seq_len, n_elem, base=10000, dtype=torch.bfloat16, rope_scaling=None);
apply_rope_scaling(freqs, rope_scaling) with rope_scaling a dict of factor, low_freq_factor, high_freq_factor,
original_max_position_embeddings; apply_rotary_emb(x, freqs_cis) -> x rotated.
Layout: x (B, T, H, D); freqs_cis (T, D/2, 2), rows already picked (freqs_cis[input_pos]), shared by the batch.
Dtype: the cache is bfloat16 by default (gpt-fast's habit): a caller must pass dtype=torch.float32 to be held to
float32 accuracy. apply_rotary_emb computes in float32 (x.float()) and returns x's dtype.

Course exercises: rope.rope_inv_freq = angle of row 1 of precompute_freqs_cis(2, d, base, torch.float32);
rope.apply_rope (interleaved=True) = apply_rotary_emb(x as (1, N, 1, D), table[positions]);
scaling.llama3_inv_freq(d, base, factor, L, lo, hi) = apply_rope_scaling(rope_inv_freq(d, base),
dict(factor=factor, low_freq_factor=lo, high_freq_factor=hi, original_max_position_embeddings=L)).
Cannot express: half-split pairs, partial rotary, fractional positions (table rows), argument checks.
"""
import math

import torch


def apply_rope_scaling(freqs, rope_scaling=None):
    factor = rope_scaling["factor"]
    low_freq_factor = rope_scaling["low_freq_factor"]
    high_freq_factor = rope_scaling["high_freq_factor"]
    old_context_len = rope_scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / freqs
    short = wavelen < old_context_len / high_freq_factor
    long = wavelen > old_context_len / low_freq_factor
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * freqs / factor + smooth * freqs
    return torch.where(short, freqs, torch.where(long, freqs / factor, blended))


def precompute_freqs_cis(seq_len, n_elem, base=10000, dtype=torch.bfloat16, rope_scaling=None):
    freqs = 1.0 / (base ** (torch.arange(0, n_elem, 2)[: n_elem // 2].float() / n_elem))
    if rope_scaling is not None:
        freqs = apply_rope_scaling(freqs, rope_scaling)
    angles = torch.outer(torch.arange(seq_len, device=freqs.device).float(), freqs)
    return torch.stack((angles.cos(), angles.sin()), dim=-1).to(dtype=dtype)


def apply_rotary_emb(x, freqs_cis):
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    table = freqs_cis.view(1, pairs.size(1), 1, pairs.size(3), 2)
    cos, sin = table[..., 0], table[..., 1]
    even, odd = pairs[..., 0], pairs[..., 1]
    out = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1)
    return out.flatten(3).type_as(x)
