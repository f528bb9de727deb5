"""lucidrains' rotary-embedding-torch style: a RotaryEmbedding module whose forward returns angles,
and apply_rotary_emb(freqs, t) rotating the first freqs.shape[-1] features, pairs (2k, 2k+1).

Source: lucidrains/rotary-embedding-torch at 8bb4643d1c29f944c47d2e807452ac437689af18,
rotary_embedding_torch/rotary_embedding_torch.py (written here without einops).

Signatures:
  rotate_half(x); apply_rotary_emb(freqs, t, start_index=0, scale=1., seq_dim=-2, freqs_seq_dim=None)
  RotaryEmbedding(dim, custom_freqs=None, freqs_for='lang', theta=10000, max_freq=10, num_freqs=1,
    learned_freq=False, use_xpos=False, xpos_scale_base=512, interpolate_factor=1., theta_rescale_factor=1.,
    seq_before_head_dim=False, cache_if_possible=True, cache_max_seq_len=8192)
  .freqs (dim/2,) nn.Parameter; .forward(t, seq_len=None, offset=0) -> angles (..., dim) (each repeated twice,
  interleaved); .get_seq_pos(seq_len, device=None, dtype=None, offset=0);
  .rotate_queries_or_keys(t, seq_dim=None, offset=0, scale=None);
  .rotate_queries_with_cached_keys(q, k, seq_dim=None, offset=0).
  (xpos is not written here: use_xpos=True is refused.)
Layout: sequence at seq_dim (-2: (B, H, T, D); -3 with seq_before_head_dim: (B, T, H, D)).
Pairing: interleaved; the rotated width is the module's `dim`, the rest of t passes through; angles over `dim`.
Dtype: angles in the dtype of `freqs` (float32) for positions; the result is cast back to t's dtype.

Course exercises: rope.rope_inv_freq = RotaryEmbedding(d, theta=base).freqs;
rope.apply_rope(x, p, base, interleaved=True, rotary_dim=r) = apply_rotary_emb(RotaryEmbedding(r, theta=base)(p), x);
rope.RotaryEmbedding = rotate_queries_with_cached_keys (queries are the last T_q of T_k positions);
scaling.linear_scaled_inv_freq = RotaryEmbedding(d, theta=base, interpolate_factor=f) angles at position 1;
scaling.ntk_scaled_base = the base implied by RotaryEmbedding(d, theta=base, theta_rescale_factor=f).freqs.
Cannot express: half-split pairs, argument checks, rotary_dim 2 (its NTK rescale divides by dim - 2 even when
the factor is 1: ZeroDivisionError); the module's own methods take no arbitrary positions (arange + offset:
a caller passes positions to forward instead). rotate_queries_or_keys makes positions in t's dtype (a float16
input rounds positions past 2048): a recogniser rotates through forward(float32 positions) + apply_rotary_emb.
"""
import math

import torch
from torch import nn


def rotate_half(x):
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    first, second = pairs.unbind(dim=-1)
    return torch.stack((-second, first), dim=-1).flatten(-2)


def apply_rotary_emb(freqs, t, start_index=0, scale=1., seq_dim=-2, freqs_seq_dim=None):
    dtype = t.dtype
    if freqs_seq_dim is None and (freqs.ndim == 2 or t.ndim == 3):
        freqs_seq_dim = 0
    if t.ndim == 3 or freqs_seq_dim is not None:
        freqs = freqs.narrow(freqs_seq_dim, freqs.shape[freqs_seq_dim] - t.shape[seq_dim], t.shape[seq_dim])
    end_index = start_index + freqs.shape[-1]
    assert end_index <= t.shape[-1], "not enough features to rotate"
    left, middle, right = t[..., :start_index], t[..., start_index:end_index], t[..., end_index:]
    turned = middle * freqs.cos() * scale + rotate_half(middle) * freqs.sin() * scale
    return torch.cat((left, turned, right), dim=-1).type(dtype)


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, custom_freqs=None, freqs_for='lang', theta=10000, max_freq=10, num_freqs=1,
                 learned_freq=False, use_xpos=False, xpos_scale_base=512, interpolate_factor=1.,
                 theta_rescale_factor=1., seq_before_head_dim=False, cache_if_possible=True,
                 cache_max_seq_len=8192):
        super().__init__()
        assert not use_xpos, "xpos is not written in this file"
        assert interpolate_factor >= 1.
        theta *= theta_rescale_factor ** (dim / (dim - 2))
        self.freqs_for = freqs_for
        if custom_freqs is not None:
            freqs = custom_freqs
        elif freqs_for == 'lang':
            freqs = 1. / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        elif freqs_for == 'pixel':
            freqs = torch.linspace(1., max_freq / 2, dim // 2) * math.pi
        else:
            freqs = torch.ones(num_freqs).float()
        self.freqs = nn.Parameter(freqs, requires_grad=learned_freq)
        self.learned_freq = learned_freq
        self.interpolate_factor = interpolate_factor
        self.default_seq_dim = -3 if seq_before_head_dim else -2
        self.cache_if_possible = cache_if_possible
        self.cache_max_seq_len = cache_max_seq_len
        self.register_buffer('cached_freqs', torch.zeros(cache_max_seq_len, dim), persistent=False)
        self.cached_freqs_seq_len = 0
        self.register_buffer('dummy', torch.tensor(0), persistent=False)

    @property
    def device(self):
        return self.dummy.device

    def get_seq_pos(self, seq_len, device=None, dtype=None, offset=0):
        device = self.device if device is None else device
        dtype = self.cached_freqs.dtype if dtype is None else dtype
        return (torch.arange(seq_len, device=device, dtype=dtype) + offset) / self.interpolate_factor

    def rotate_queries_or_keys(self, t, seq_dim=None, offset=0, scale=None):
        seq_dim = self.default_seq_dim if seq_dim is None else seq_dim
        seq_len = t.shape[seq_dim]
        seq = self.get_seq_pos(seq_len, device=t.device, dtype=t.dtype, offset=offset)
        freqs = self.forward(seq, seq_len=seq_len, offset=offset)
        if seq_dim == -3:
            freqs = freqs.unsqueeze(-2)
        return apply_rotary_emb(freqs, t, scale=1. if scale is None else scale, seq_dim=seq_dim)

    def rotate_queries_with_cached_keys(self, q, k, seq_dim=None, offset=0):
        seq_dim = self.default_seq_dim if seq_dim is None else seq_dim
        q_len, k_len = q.shape[seq_dim], k.shape[seq_dim]
        assert q_len <= k_len
        rotated_q = self.rotate_queries_or_keys(q, seq_dim=seq_dim, offset=k_len - q_len + offset)
        rotated_k = self.rotate_queries_or_keys(k, seq_dim=seq_dim)
        return rotated_q.type(q.dtype), rotated_k.type(k.dtype)

    def forward(self, t, seq_len=None, offset=0):
        should_cache = (self.cache_if_possible and not self.learned_freq and seq_len is not None
                        and self.freqs_for != 'pixel' and offset + seq_len <= self.cache_max_seq_len)
        if should_cache and offset + seq_len <= self.cached_freqs_seq_len:
            return self.cached_freqs[offset:offset + seq_len].detach()
        angles = t.type(self.freqs.dtype)[..., None] * self.freqs
        angles = angles.repeat_interleave(2, dim=-1)
        if should_cache and offset == 0:
            self.cached_freqs[:seq_len] = angles.detach()
            self.cached_freqs_seq_len = seq_len
        return angles
