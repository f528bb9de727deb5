"""A small RoPE decoder with the whole optional interface of ``course.probe.factory``: an
example target for ``python -m course.probe course/probe/example_model.py:make_model``.

``make_model_restarting_positions`` is the same model with a classic bug (generated tokens
numbered from 0 while decoding with the cache); the probe's cache test catches it.
Plain torch only: it runs in the sandbox, which can read the course package and torch.
"""
import math

import torch
from torch import nn


class RopeDecoder(nn.Module):
    position_scheme = "rope"

    def __init__(self, vocab=64, d=32, heads=4, train_len=32, base=10000.0, restart_positions=False):
        super().__init__()
        torch.manual_seed(0)
        self.heads, self.head_dim, self.train_len = heads, d // heads, train_len
        self.restart_positions = restart_positions
        self.tok = nn.Embedding(vocab, d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("inv_freq", base ** (-torch.arange(0, self.head_dim, 2).float() / self.head_dim))

    def apply_rope(self, x, position_ids):
        """Rotate pairs (k, k + d/2) of x (B, H, T, d) by position_ids (B, T) * inv_freq."""
        angles = position_ids[:, None, :, None].float() * self.inv_freq  # (B, 1, T, d/2)
        cos, sin = angles.cos(), angles.sin()
        a, b = x[..., : self.head_dim // 2], x[..., self.head_dim // 2:]
        return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)

    def _qkv(self, h, position_ids):
        B, T, _ = h.shape
        q, k, v = self.qkv(h).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return self.apply_rope(q, position_ids), self.apply_rope(k, position_ids), v

    def _positions(self, input_ids, position_ids, attention_mask, past_len):
        if position_ids is not None:
            return position_ids
        B, T = input_ids.shape
        if attention_mask is not None:
            return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        start = 0 if self.restart_positions else past_len  # the bug: numbering restarts at 0
        return (torch.arange(T) + start)[None].expand(B, T)

    def attention_scores(self, input_ids, position_ids=None):
        pos = self._positions(input_ids, position_ids, None, 0)
        q, k, _ = self._qkv(self.norm1(self.tok(input_ids)), pos)
        return q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)

    def forward(self, input_ids, position_ids=None, attention_mask=None, past_key_values=None, use_cache=False):
        B, T = input_ids.shape
        past_len = 0 if past_key_values is None else past_key_values[0].shape[2]
        pos = self._positions(input_ids, position_ids, attention_mask, past_len)
        x = self.tok(input_ids)
        q, k, v = self._qkv(self.norm1(x), pos)
        if past_key_values is not None:
            k, v = torch.cat([past_key_values[0], k], 2), torch.cat([past_key_values[1], v], 2)
        S = k.shape[2]
        allowed = torch.ones(T, S, dtype=torch.bool).tril(S - T)[None, None]
        if attention_mask is not None:
            allowed = allowed & attention_mask.bool()[:, None, None, -S:]
        scores = (q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)).masked_fill(~allowed, -1e9)
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.out(y)
        x = x + self.mlp(self.norm2(x))
        logits = self.head(x)
        return (logits, (k, v)) if use_cache else logits


def make_model():
    return RopeDecoder()


def make_model_restarting_positions():
    return RopeDecoder(restart_positions=True)
