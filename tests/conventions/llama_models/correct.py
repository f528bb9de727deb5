"""Meta's llama-models (Llama 3 / 3.1) style: precompute_freqs_cis(dim, end, theta, use_scaled) builds a complex
table, Llama 3.1's frequency scaling apply_scaling(freqs) has its constants inside, apply_rotary_emb(xq, xk,
freqs_cis) rotates (B, T, H, D), pairs (2k, 2k+1).

Source: meta-llama/llama-models at a9c89c471f793423afd4cc3ca8671d6e56fe64cb, models/llama3/model.py.
(models/llama4/model.py has apply_scaling(freqs, scale_factor, high_freq_factor) and a 6-argument
precompute_freqs_cis: same names, other signatures.)

Signatures: apply_scaling(freqs) -> freqs (factor 8, low_freq_factor 1, high_freq_factor 4, old context 8192);
precompute_freqs_cis(dim, end, theta=10000.0, use_scaled=False) -> complex64 (end, dim/2);
reshape_for_broadcast(freqs_cis, x); apply_rotary_emb(xq, xk, freqs_cis) -> (xq_out, xk_out).
Layout: (B, T, H, D), table rows = the T positions, shared by the batch; computes in float32, returns input dtype.

Course exercises: rope.rope_inv_freq = angle of row 1 of precompute_freqs_cis(d, 2, base);
rope.apply_rope (interleaved=True) = apply_rotary_emb(x as (1, N, 1, D), same, table[positions])[0];
scaling.llama3_inv_freq(d, base) with the default factor=8, original_max_len=8192, low 1, high 4 =
apply_scaling(rope_inv_freq(d, base)) (= angle of row 1 of precompute_freqs_cis(d, 2, base, use_scaled=True)).
Cannot express: half-split pairs, partial rotary, fractional positions, argument checks, and Llama 3.1 scaling
with other parameters than the defaults (apply_scaling has no arguments for them).
"""
import math

import torch


def apply_scaling(freqs):
    scale_factor, low_freq_factor, high_freq_factor, old_context_len = 8, 1, 4, 8192
    wavelen = 2 * math.pi / freqs
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    middle = (1 - smooth) * freqs / scale_factor + smooth * freqs
    scaled = torch.where(wavelen > old_context_len / low_freq_factor, freqs / scale_factor, freqs)
    in_band = (wavelen >= old_context_len / high_freq_factor) & (wavelen <= old_context_len / low_freq_factor)
    return torch.where(in_band, middle, scaled)


def precompute_freqs_cis(dim, end, theta=10000.0, use_scaled=False):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    if use_scaled:
        freqs = apply_scaling(freqs)
    angles = torch.outer(torch.arange(end, device=freqs.device, dtype=torch.float32), freqs)
    return torch.polar(torch.ones_like(angles), angles)


def reshape_for_broadcast(freqs_cis, x):
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    return freqs_cis.view(*[n if i in (1, x.ndim - 1) else 1 for i, n in enumerate(x.shape)])


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)
