"""RoPE with a Python loop over feature pairs and float64 internals for every input dtype: each
pair (i, j) of the chosen convention (rotate_complex: the half-split one, with explicit cos
and sin) is rotated on its own with math-module-free tensor ops. RotaryEmbedding's forward
is inherited from a base class that asks the subclass for cos/sin rows; the subclass keeps a
float64 table grown (by doubling) only when a position past its end is asked for."""
import math

import torch
from torch import nn


def _pairs(r, interleaved):
    return [(2 * k, 2 * k + 1) if interleaved else (k, k + r // 2) for k in range(r // 2)]


def rope_inv_freq(d, base=10000.0):
    if d < 2 or d % 2 == 1:
        raise ValueError(f"rope_inv_freq needs an even d >= 2 (got d={d})")
    return torch.tensor([base ** (-(2 * k) / d) for k in range(d // 2)], dtype=torch.float64).float()


def _turn(x, cos, sin, interleaved):
    """Rotate the first 2*cos.shape[-1] features of x; cos/sin are float64 (..., r/2)."""
    r = 2 * cos.shape[-1]
    xw = x.to(torch.float64)
    cols = [xw[..., i] for i in range(x.shape[-1])]
    out = list(cols)
    for k, (i, j) in enumerate(_pairs(r, interleaved)):
        c, s = cos[..., k], sin[..., k]
        out[i] = cols[i] * c - cols[j] * s
        out[j] = cols[i] * s + cols[j] * c
    shape = torch.broadcast_shapes(x.shape[:-1], cos.shape[:-1])
    return torch.stack([o.expand(shape) for o in out], dim=-1).to(x.dtype)


def rotate_complex(x, angles):
    d = x.shape[-1]
    if d % 2 == 1:
        raise ValueError(f"x needs an even number of features, got {d}")
    try:
        ang = torch.as_tensor(angles, device=x.device).to(torch.float64) * torch.ones(d // 2, dtype=torch.float64,
                                                                                     device=x.device)
        out = _turn(x, ang.cos(), ang.sin(), False)
    except RuntimeError:
        out = None
    if out is None or tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"angles of shape {tuple(torch.as_tensor(angles).shape)} do not give one angle per pair "
                         f"of x of shape {tuple(x.shape)}")
    return out


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or r < 2 or r > d:
        raise ValueError(f"rotary_dim must be even, >= 2 and <= d={d}; got rotary_dim={r}")
    pos = torch.as_tensor(positions, device=x.device).to(torch.float64)
    ang = pos.unsqueeze(-1) * torch.tensor([base ** (-(2 * k) / r) for k in range(r // 2)],
                                           dtype=torch.float64, device=x.device)
    out = _turn(x, ang.cos(), ang.sin(), interleaved)
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"positions of shape {tuple(pos.shape)} do not fit x of shape {tuple(x.shape)}")
    return out


def rope_matrix(position, d, base=10000.0, interleaved=False):
    R = torch.zeros(d, d, dtype=torch.float64)
    for k, (i, j) in enumerate(_pairs(d, interleaved)):
        a = float(position) * base ** (-(2 * k) / d)
        R[i, i], R[i, j] = math.cos(a), -math.sin(a)
        R[j, i], R[j, j] = math.sin(a), math.cos(a)
    return R.float()


def interleaved_to_half_split(d):
    if d < 2 or d % 2 == 1:
        raise ValueError(f"interleaved_to_half_split needs an even d (got d={d})")
    perm = [0] * d
    for k in range(d // 2):
        perm[k] = 2 * k
        perm[k + d // 2] = 2 * k + 1
    return torch.tensor(perm, dtype=torch.long)


class _RotaryBase(nn.Module):
    """forward(q, k, positions): rotate both by the subclass's cos_sin(positions)."""

    def forward(self, q, k, positions):
        for name, t in (("q", q), ("k", k)):
            if t.shape[-1] != self.d:
                raise ValueError(f"{name} must end in d={self.d} features, not {t.shape[-1]}")
        cos, sin = self.cos_sin(torch.as_tensor(positions))
        cos, sin = cos.to(q.device), sin.to(q.device)
        return _turn(q, cos, sin, self.interleaved), _turn(k, cos, sin, self.interleaved)


class RotaryEmbedding(_RotaryBase):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        if d < 2 or d % 2:
            raise ValueError(f"d={d} must be even")
        self.d, self.base, self.interleaved = d, base, interleaved
        self.register_buffer("freqs", torch.tensor([base ** (-(2 * k) / d) for k in range(d // 2)],
                                                   dtype=torch.float64), persistent=False)
        self.register_buffer("angles", torch.empty(0, d // 2, dtype=torch.float64), persistent=False)
        self._cover(max_len)

    def _cover(self, n):
        have = self.angles.shape[0]
        if n <= have:
            return
        n = max(n, 2 * have)
        new = torch.arange(have, n, dtype=torch.float64, device=self.freqs.device)[:, None] * self.freqs
        self.angles = torch.cat((self.angles, new))

    def cos_sin(self, positions):
        positions = positions.to(self.freqs.device)
        if positions.is_floating_point() or (positions.numel() and positions.min().item() < 0):
            a = positions.to(torch.float64)[..., None] * self.freqs
        else:
            if positions.numel():
                self._cover(positions.max().item() + 1)
            a = self.angles[positions.long()]
        return a.cos(), a.sin()
