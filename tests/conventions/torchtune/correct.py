"""torchtune style RoPE: modules called on (B, T, H, D) with keyword-only `input_pos`, pairs (2k, 2k+1).

Source: pytorch/torchtune at bd2a0fc7c31430972728494fa01aaeeb0ebf1ba1,
torchtune/modules/position_embeddings.py (RotaryPositionalEmbeddings) and
torchtune/models/llama3_1/_position_embeddings.py (Llama3ScaledRoPE).

Signatures:
  RotaryPositionalEmbeddings(dim, max_seq_len=4096, base=10_000); rope_init(); build_rope_cache(max_seq_len=4096);
  forward(x, *, input_pos=None) -> x rotated.
  Llama3ScaledRoPE(dim, max_seq_len=4096, base=10_000, scale_factor=8, low_freq_factor=1, high_freq_factor=4,
  old_context_len=8192); apply_scaling(freqs, scale_factor, low_freq_factor, high_freq_factor, old_context_len).
Layout: x is (B, T, H, D); input_pos is (T,) or (B, T) integer rows of the cache; without it positions are 0..T-1.
Buffers: `theta` (D/2,) float32 frequencies; `cache` (max_seq_len, D/2, 2) holding (cos, sin).
Pairing: interleaved (2k, 2k+1). Computes in float32 (x.float()), returns x's dtype.

Course exercises: rope.rope_inv_freq = RotaryPositionalEmbeddings(d, base=base).theta;
rope.apply_rope (interleaved=True) = forward(x as (1, N, 1, D), input_pos=positions);
rope.RotaryEmbedding = the module applied to q and to k; scaling.llama3_inv_freq = Llama3ScaledRoPE(...).theta.
Cannot express: half-split pairs, partial rotary (every feature is rotated), fractional positions (cache rows),
positions past max_seq_len (the cache does not grow: indexing fails), argument checks.
"""
import math

import torch
from torch import nn


class RotaryPositionalEmbeddings(nn.Module):
    def __init__(self, dim, max_seq_len=4096, base=10_000):
        super().__init__()
        self.dim = dim
        self.max_seq_len = max_seq_len
        self.base = base
        self.rope_init()

    def _frequencies(self):
        exponents = torch.arange(0, self.dim, 2)[: self.dim // 2].float() / self.dim
        return 1.0 / (self.base ** exponents)

    def rope_init(self):
        self.register_buffer("theta", self._frequencies(), persistent=False)
        self.build_rope_cache(self.max_seq_len)

    def build_rope_cache(self, max_seq_len=4096):
        positions = torch.arange(max_seq_len, dtype=self.theta.dtype, device=self.theta.device)
        angles = torch.outer(positions, self.theta).float()
        self.register_buffer("cache", torch.stack((angles.cos(), angles.sin()), dim=-1), persistent=False)

    def forward(self, x, *, input_pos=None):
        seq_len = x.size(1)
        rows = self.cache[:seq_len] if input_pos is None else self.cache[input_pos]
        pairs = x.float().reshape(*x.shape[:-1], -1, 2)
        rows = rows.view(-1, seq_len, 1, pairs.size(3), 2)
        cos, sin = rows[..., 0], rows[..., 1]
        even, odd = pairs[..., 0], pairs[..., 1]
        out = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1)
        return out.flatten(3).type_as(x)


class Llama3ScaledRoPE(RotaryPositionalEmbeddings):
    def __init__(self, dim, max_seq_len=4096, base=10_000, scale_factor=8, low_freq_factor=1,
                 high_freq_factor=4, old_context_len=8192):
        self.scale_factor = scale_factor
        self.low_freq_factor = low_freq_factor
        self.high_freq_factor = high_freq_factor
        self.old_context_len = old_context_len
        super().__init__(dim, max_seq_len, base)

    def rope_init(self):
        freqs = self.apply_scaling(self._frequencies(), self.scale_factor, self.low_freq_factor,
                                   self.high_freq_factor, self.old_context_len)
        self.register_buffer("theta", freqs, persistent=False)
        self.build_rope_cache(self.max_seq_len)

    def apply_scaling(self, freqs, scale_factor, low_freq_factor, high_freq_factor, old_context_len):
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        scaled = []
        for freq in freqs.tolist():
            wavelen = 2 * math.pi / freq
            if wavelen < high_freq_wavelen:
                scaled.append(freq)
            elif wavelen > low_freq_wavelen:
                scaled.append(freq / scale_factor)
            else:
                smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
                scaled.append((1 - smooth) * freq / scale_factor + smooth * freq)
        return torch.tensor(scaled, dtype=freqs.dtype, device=freqs.device)
