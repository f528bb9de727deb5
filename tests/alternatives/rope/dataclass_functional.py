"""RoPE split into a frozen dataclass config and pure functions (functools.partial binds
the config), with validation through .item() and Python ints. RotaryEmbedding holds its
frequencies as a frozen nn.Parameter (requires_grad=False) rather than a buffer, builds
its cos/sin cache lazily on first use and regrows it, and returns a NamedTuple (q, k)."""
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


@dataclass(frozen=True)
class RopeConfig:
    rotary_dim: int
    base: float = 10000.0
    interleaved: bool = False

    def __post_init__(self):
        if self.rotary_dim % 2 or self.rotary_dim < 2:
            raise ValueError(f"rotary_dim={self.rotary_dim} must be a positive even number")


def _freqs(cfg, device=None, dtype=torch.float32):
    k = torch.arange(cfg.rotary_dim // 2, device=device, dtype=torch.float64)
    return torch.exp(k * (-2.0 * math.log(cfg.base) / cfg.rotary_dim)).to(dtype)


def _rotate_with(x, cos, sin, cfg):
    r = cfg.rotary_dim
    up = torch.promote_types(x.dtype, torch.float32)
    head = x[..., :r].to(up)
    if cfg.interleaved:
        even, odd = head[..., ::2], head[..., 1::2]
        new = torch.stack((even * cos - odd * sin, even * sin + odd * cos), -1).reshape(head.shape)
    else:
        first, second = head.chunk(2, dim=-1)
        new = torch.cat((first * cos - second * sin, first * sin + second * cos), -1)
    return torch.cat((new.to(x.dtype), x[..., r:]), -1)


def _rope(x, positions, cfg):
    up = torch.promote_types(x.dtype, torch.float32)
    theta = torch.as_tensor(positions, device=x.device).to(up).unsqueeze(-1) * _freqs(cfg, x.device, up)
    return _rotate_with(x, theta.cos(), theta.sin(), cfg)


def rope_inv_freq(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d={d} is odd")
    return _freqs(RopeConfig(d, base))


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r > d or r < 2 or r % 2:
        raise ValueError(f"rotary_dim={r} invalid for d={d} (needs an even value in [2, d])")
    rope = functools.partial(_rope, cfg=RopeConfig(r, float(base), bool(interleaved)))
    return rope(x, positions)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    cfg = RopeConfig(d, float(base), bool(interleaved))
    eye = torch.eye(d, dtype=torch.float64)
    return _rope(eye, torch.full((d,), float(position), dtype=torch.float64), cfg).mT.to(torch.float32)


def interleaved_to_half_split(d):
    if d % 2 or d < 2:
        raise ValueError(f"d={d} must be positive and even")
    return torch.arange(d).view(-1, 2).mT.reshape(-1)


class RotatedPair(NamedTuple):
    q: torch.Tensor
    k: torch.Tensor


class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        self.cfg = RopeConfig(int(d), float(base), bool(interleaved))
        self.inv_freq = nn.Parameter(_freqs(self.cfg), requires_grad=False)
        self.max_len = int(max_len)
        self._cos = self._sin = None

    def _table(self, needed):
        size = self.max_len if self._cos is None else self._cos.shape[0]
        while size < needed:
            size *= 2
        if self._cos is None or self._cos.shape[0] < size or self._cos.device != self.inv_freq.device:
            t = torch.arange(size, device=self.inv_freq.device, dtype=torch.float32)
            angles = t[:, None] * self.inv_freq
            self._cos, self._sin = angles.cos(), angles.sin()
        return self._cos, self._sin

    def forward(self, q, k, positions):
        d = self.cfg.rotary_dim
        if q.shape[-1] != d or k.shape[-1] != d:
            bad = "q" if q.shape[-1] != d else "k"
            raise ValueError(f"{bad} must have last dimension d={d}")
        positions = torch.as_tensor(positions, device=self.inv_freq.device)
        if positions.is_floating_point() or (positions.numel() and positions.min().item() < 0):
            theta = positions.float().unsqueeze(-1) * self.inv_freq
            cos, sin = theta.cos(), theta.sin()
        else:
            cos, sin = self._table(positions.max().item() + 1 if positions.numel() else 0)
            cos, sin = cos[positions], sin[positions]
        cos, sin = cos.to(q.device), sin.to(q.device)
        return RotatedPair(_rotate_with(q, cos, sin, self.cfg), _rotate_with(k, cos, sin, self.cfg))
