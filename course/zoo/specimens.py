"""The specimens: each a family of course.zoo.models with its claimed settings, and one method of
its own. Diagnose them by what they do, as you would a compiled kernel: the code is here to read
once you have your diagnosis, not instead of it."""
from __future__ import annotations

import torch

from course.zoo.models import Alibi, DynamicNtk, Rope, Sinusoidal, T5Bias, Yarn


class _A(Rope):
    claim = "RoPE, half-split pairs, base 500000 (Llama 3's rope_theta), head_dim 16, KV cache"

    def inv_freq(self, seq_len):
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float64) / self.head_dim
        return (10000.0 ** -exponents).float()


class _B(Alibi):
    claim = "ALiBi for 12 heads (Press et al.'s slopes), head_dim 8, KV cache"

    @property
    def alibi_slopes(self):
        n = 2 ** (self.heads.bit_length() - 1)  # the largest power of two not above the head count
        slopes = [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]
        slopes += [2.0 ** (-4.0 * (2 * i + 1) / n) for i in range(self.heads - n)]  # odd slopes of 2n heads
        return torch.tensor(slopes)


class _C(Rope):
    claim = "RoPE, half-split pairs, base 10000, head_dim 16, KV cache (the model numbers new tokens itself)"

    def positions(self, input_ids, attention_mask, past_len):
        B, T = input_ids.shape
        if attention_mask is not None:
            return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        return torch.arange(T).expand(B, T)


class _D(T5Bias):
    claim = "T5 relative bias as in T5's decoder: unidirectional, 32 buckets, max distance 128, 4 heads"

    def relative_position(self, q_pos, k_pos):
        return q_pos[..., :, None] - k_pos[..., None, :]


class _E(Yarn):
    claim = "RoPE with YaRN, factor 4 over the trained 32 tokens (beta_fast 32, beta_slow 1), base 10000, head_dim 16"

    def inv_freq(self, seq_len):
        d = self.head_dim
        base = self.base * self.factor ** (d / (d - 2))
        return (base ** -(torch.arange(0, d, 2, dtype=torch.float64) / d)).float()


class _F(Rope):
    claim = "RoPE, half-split pairs, base 10000, head_dim 16, KV cache"

    def angles(self, position_ids, inv_freq):
        return (position_ids[..., None].half() * inv_freq.half()).float()


class _G(Yarn):
    claim = "RoPE with YaRN, factor 4 over the trained 32 tokens (beta_fast 32, beta_slow 1), base 10000, head_dim 16"

    def angles(self, position_ids, inv_freq):
        return (position_ids[..., None].double() * inv_freq.double()).float()


class _H(Alibi):
    claim = "ALiBi for 12 heads (Press et al.'s slopes), head_dim 8, KV cache"

    @property
    def alibi_slopes(self):
        return torch.tensor([2.0 ** (-8.0 * (i + 1) / self.heads) for i in range(self.heads)])


class _I(Sinusoidal):
    claim = ("sinusoidal absolute positions (interleaved sin/cos, base 10000) added to the embeddings; "
             "batches padded on the left with an attention mask")

    def positions(self, input_ids, attention_mask, past_len):
        B, T = input_ids.shape
        return (torch.arange(T) + past_len).expand(B, T)


class _J(Rope):
    claim = "RoPE, half-split pairs (k, k + d/2) as Llama's checkpoints expect, base 10000, head_dim 16"

    def pair(self, x, cos, sin):
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class _K(Alibi):
    claim = "ALiBi for 8 heads (Press et al.'s slopes 1/2, 1/4, ..., 1/256), head_dim 8, KV cache"

    @property
    def alibi_slopes(self):
        return torch.tensor([2.0 ** (-8.0 * (self.heads - i) / self.heads) for i in range(self.heads)])


class _L(DynamicNtk):
    claim = "RoPE with dynamic NTK scaling, factor 2 past the trained 32 tokens, base 10000, head_dim 16"

    def inv_freq(self, seq_len):
        if self._cached is None or seq_len > self._cached[0]:
            self._cached = (seq_len, self.table(seq_len))
        return self._cached[1]


SPECIMENS = {
    "A": (_A, dict(base=500000.0)),
    "B": (_B, dict(heads=12, head_dim=8)),
    "C": (_C, dict()),
    "D": (_D, dict()),
    "E": (_E, dict(factor=4.0)),
    "F": (_F, dict()),
    "G": (_G, dict(factor=4.0)),
    "H": (_H, dict(heads=12, head_dim=8)),
    "I": (_I, dict()),
    "J": (_J, dict()),
    "K": (_K, dict(heads=8, head_dim=8)),
    "L": (_L, dict(factor=2.0)),
}
