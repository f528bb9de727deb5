"""The families the zoo's specimens are made from: one causal attention layer between a token
embedding and an output head, its position scheme in a few small methods a specimen overrides.

Every family follows ``course.probe.factory``'s interface, so ``python -m course.probe --zoo A``
can probe a specimen: ``forward(input_ids, position_ids=None, attention_mask=None,
past_key_values=None, use_cache=False)`` (logits, and with ``use_cache`` the cache: the rotated
keys, the values and the keys' positions), ``attention_scores(input_ids, position_ids=None)``,
``position_scheme``, ``train_len``, ``head_dim``, and each scheme's own parts (``apply_rope``,
``inv_freq``, ``alibi_slopes``, ``relative_bias``, ``position_table``). Weights come from a fixed
seed: a specimen gives the same numbers on every machine and in every process. Torch only.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Decoder(nn.Module):
    """No position information at all; the families below add it."""

    position_scheme = "none"
    train_len = 32

    def __init__(self, heads=4, head_dim=16, vocab=64):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.heads, self.head_dim, self.vocab = heads, head_dim, vocab
        width = heads * head_dim
        self.embed = nn.Parameter(torch.randn(vocab, width, generator=g))
        self.wqkv = nn.Parameter(torch.randn(width, 3 * width, generator=g) / math.sqrt(width))
        self.wout = nn.Parameter(torch.randn(width, vocab, generator=g) / math.sqrt(width))
        self.requires_grad_(False)

    # --- the position scheme: what a family or a specimen overrides
    def positions(self, input_ids, attention_mask, past_len):
        """Position ids (B, T) of the new tokens: real tokens counted from the mask (it covers the
        cached tokens too), else past_len, past_len + 1, ..."""
        B, T = input_ids.shape
        if attention_mask is not None:
            return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        return (torch.arange(T) + past_len).expand(B, T)

    def add_positions(self, x, position_ids):
        return x

    def rotate(self, x, position_ids):
        return x

    def bias(self, q_pos, k_pos):
        """Score bias (B, H, T_q, T_k) for batched positions, or None."""
        return None

    def score_scale(self):
        return 1.0

    # --- the layer
    def _project(self, input_ids, position_ids):
        B, T = input_ids.shape
        x = self.add_positions(self.embed[input_ids], position_ids)
        q, k, v = (x @ self.wqkv).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return x, self.rotate(q, position_ids), self.rotate(k, position_ids), v

    def _scores(self, q, k, q_pos, k_pos):
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) * self.score_scale()
        bias = self.bias(q_pos, k_pos)
        return scores if bias is None else scores + bias

    def attention_scores(self, input_ids, position_ids=None):
        """Pre-softmax scores (B, H, T, T) of a full pass (unmasked)."""
        B, T = input_ids.shape
        pos = self.positions(input_ids, None, 0) if position_ids is None else position_ids.expand(B, T)
        _, q, k, _ = self._project(input_ids, pos)
        return self._scores(q, k, pos, pos)

    def forward(self, input_ids, position_ids=None, attention_mask=None, past_key_values=None, use_cache=False):
        B, T = input_ids.shape
        past_len = 0 if past_key_values is None else past_key_values[0].shape[-2]
        pos = self.positions(input_ids, attention_mask, past_len) if position_ids is None else position_ids.expand(B, T)
        x, q, k, v = self._project(input_ids, pos)
        k_pos = pos
        if past_key_values is not None:
            past_k, past_v, past_pos = past_key_values
            k, v, k_pos = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2), torch.cat([past_pos, pos], -1)
        S = k.shape[-2]
        allowed = torch.ones(T, S, dtype=torch.bool).tril(S - T)[None, None]
        if attention_mask is not None:
            allowed = allowed & attention_mask.bool()[:, None, None, -S:]
        scores = self._scores(q, k, pos, k_pos).masked_fill(~allowed, -1e9)
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        logits = (x + y) @ self.wout
        return (logits, (k, v, k_pos)) if use_cache else logits


class Rope(Decoder):
    """RoPE: half-split pairs (k, k + d/2), angles position * inv_freq in float32."""

    position_scheme = "rope"

    def __init__(self, base=10000.0, **sizes):
        super().__init__(**sizes)
        self.base = float(base)

    def inv_freq(self, seq_len):
        """The (d/2,) float32 frequencies used for a sequence of `seq_len` positions."""
        return (self.base ** -(torch.arange(0, self.head_dim, 2, dtype=torch.float64) / self.head_dim)).float()

    def angles(self, position_ids, inv_freq):
        return position_ids[..., None].float() * inv_freq

    def pair(self, x, cos, sin):
        a, b = x[..., : self.head_dim // 2], x[..., self.head_dim // 2:]
        return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)

    def apply_rope(self, x, position_ids):
        """x (..., T, head_dim) rotated at position_ids (T,), or (B, T) for x (B, H, T, head_dim)."""
        position_ids = torch.as_tensor(position_ids)
        angles = self.angles(position_ids, self.inv_freq(int(position_ids.max()) + 1))
        if x.dim() == 4 and angles.dim() == 3:
            angles = angles[:, None]
        return self.pair(x.float(), angles.cos(), angles.sin()).to(x.dtype)

    def rotate(self, x, position_ids):
        return self.apply_rope(x, position_ids)


class DynamicNtk(Rope):
    """Dynamic NTK: past train_len, the base grows with the current length; the table is cached
    for the length it was made for."""

    def __init__(self, factor=2.0, **rest):
        super().__init__(**rest)
        self.factor, self._cached = float(factor), None

    def table(self, seq_len):
        s = max(seq_len, self.train_len)
        stretch = self.factor * s / self.train_len - (self.factor - 1)
        base = self.base * stretch ** (self.head_dim / (self.head_dim - 2))
        return (base ** -(torch.arange(0, self.head_dim, 2, dtype=torch.float64) / self.head_dim)).float()

    def inv_freq(self, seq_len):
        if self._cached is None or self._cached[0] != seq_len:
            self._cached = (seq_len, self.table(seq_len))
        return self._cached[1]


class Yarn(Rope):
    """YaRN (NTK-by-parts) over train_len, and its attention factor on the scores."""

    def __init__(self, factor=4.0, beta_fast=32.0, beta_slow=1.0, **rest):
        super().__init__(**rest)
        self.factor, self.beta_fast, self.beta_slow = float(factor), beta_fast, beta_slow

    def inv_freq(self, seq_len):
        d = self.head_dim
        theta = self.base ** -(torch.arange(0, d, 2, dtype=torch.float64) / d)

        def pair_with_turns(turns):  # the (fractional) pair making `turns` turns over train_len
            return d * math.log(self.train_len / (turns * 2 * math.pi)) / (2 * math.log(self.base))

        low = max(math.floor(pair_with_turns(self.beta_fast)), 0)
        high = min(math.ceil(pair_with_turns(self.beta_slow)), d - 1)
        ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / max(high - low, 1e-3)).clamp(0, 1)
        return (theta * (1 - ramp) + theta / self.factor * ramp).float()

    def attention_factor(self):
        return 0.1 * math.log(self.factor) + 1.0

    def score_scale(self):
        return self.attention_factor() ** 2  # the factor on both q and k, as cos and sin carry it in transformers


class Alibi(Decoder):
    """ALiBi: score bias -slope_h * |i - j|, the paper's slopes (any number of heads)."""

    position_scheme = "alibi"

    @property
    def alibi_slopes(self):
        def geometric(n):
            return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

        closest = 2 ** int(math.floor(math.log2(self.heads)))
        return torch.tensor(geometric(closest) + geometric(2 * closest)[0::2][: self.heads - closest])

    def bias(self, q_pos, k_pos):
        distance = (q_pos[:, None, :, None] - k_pos[:, None, None, :]).abs().float()
        return -self.alibi_slopes[None, :, None, None] * distance


class T5Bias(Decoder):
    """T5's relative bias as its decoder uses it: unidirectional buckets of key - query."""

    position_scheme = "t5"

    def __init__(self, num_buckets=32, max_distance=128, **sizes):
        super().__init__(**sizes)
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.table = nn.Parameter(torch.randn(num_buckets, self.heads, generator=torch.Generator().manual_seed(1)),
                                  requires_grad=False)

    def bucket(self, relative_position):
        """Bucket ids of key - query offsets: keys after the query share bucket 0."""
        distance = (-relative_position.long()).clamp(min=0)
        exact = self.num_buckets // 2
        scaled = torch.log(distance.clamp(min=exact).float() / exact) / math.log(self.max_distance / exact)
        far = (exact + (scaled * (self.num_buckets - exact)).long()).clamp(max=self.num_buckets - 1)
        return torch.where(distance < exact, distance, far)

    def relative_position(self, q_pos, k_pos):
        """Offsets key - query, (..., T_q, T_k)."""
        return k_pos[..., None, :] - q_pos[..., :, None]

    def relative_bias(self, q_pos, k_pos):
        """(H, T_q, T_k) for 1-D positions, or (B, H, T_q, T_k) for (B, T) ones."""
        return self.table[self.bucket(self.relative_position(q_pos, k_pos))].movedim(-1, -3)

    def bias(self, q_pos, k_pos):
        return self.relative_bias(q_pos, k_pos)


class Sinusoidal(Decoder):
    """Vaswani's sinusoidal table added to the embeddings (interleaved sin, cos; base 10000). The
    model numbers its tokens itself: it takes no position_ids."""

    position_scheme = "sinusoidal"

    def position_table(self, position_ids):
        """(..., d_model) sinusoidal vectors of the given positions."""
        width = self.heads * self.head_dim
        inv_freq = 10000.0 ** -(torch.arange(0, width, 2, dtype=torch.float64) / width)
        angles = position_ids[..., None].double() * inv_freq
        return torch.stack((angles.sin(), angles.cos()), -1).flatten(-2).float()

    def add_positions(self, x, position_ids):
        return x + self.position_table(position_ids)

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False):
        return super().forward(input_ids, None, attention_mask, past_key_values, use_cache)
