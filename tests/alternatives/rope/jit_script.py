"""RoPE with TorchScript kernels: the pair rotation and the angle table are
torch.jit.script functions (a bool flag picks the pairing), Python wrappers validate with
Python ints; RotaryEmbedding keeps half-width `cos`/`sin` buffers that are re-registered
larger when positions run past them."""
from typing import Tuple

import torch
from torch import nn


@torch.jit.script
def _inv_freq(d: int, base: float) -> torch.Tensor:
    exponent = torch.arange(0, d, 2, dtype=torch.float64) / float(d)
    return torch.pow(torch.full_like(exponent, base), -exponent).to(torch.float32)


@torch.jit.script
def _angles(positions: torch.Tensor, inv_freq: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    a = positions.to(inv_freq.dtype).unsqueeze(-1) * inv_freq
    return a.cos(), a.sin()


@torch.jit.script
def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> torch.Tensor:
    r = 2 * cos.size(-1)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    head = x[..., :r].to(work)
    cos, sin = cos.to(work), sin.to(work)
    if interleaved:
        a, b = head[..., 0::2], head[..., 1::2]
        turned = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    else:
        a, b = head[..., : r // 2], head[..., r // 2:]
        turned = torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return torch.cat([turned.to(x.dtype), x[..., r:]], dim=-1)


def rope_inv_freq(d, base=10000.0):
    if int(d) < 2 or int(d) % 2:
        raise ValueError(f"d ({d}) must be a positive even integer")
    return _inv_freq(int(d), float(base))


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = int(x.shape[-1])
    r = d if rotary_dim is None else int(rotary_dim)
    if r < 2 or r > d or r % 2:
        raise ValueError(f"rotary_dim ({r}) must be even with 2 <= rotary_dim <= {d}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    inv = _inv_freq(r, float(base)).to(device=x.device, dtype=work)
    cos, sin = _angles(torch.as_tensor(positions, device=x.device), inv)
    return _rotate(x, cos, sin, bool(interleaved))


def rope_matrix(position, d, base=10000.0, interleaved=False):
    inv = rope_inv_freq(d, base).to(torch.float64)
    cos, sin = _angles(torch.full((d,), float(position), dtype=torch.float64), inv)
    rotated = _rotate(torch.eye(d, dtype=torch.float64), cos, sin, bool(interleaved))
    return rotated.T.contiguous().to(torch.float32)


@torch.jit.script
def _perm(d: int) -> torch.Tensor:
    return torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])


def interleaved_to_half_split(d):
    if int(d) < 2 or int(d) % 2:
        raise ValueError(f"d ({d}) must be a positive even integer")
    return _perm(int(d))


class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        self.d = int(d)
        self.interleaved = bool(interleaved)
        self.register_buffer("inv_freq", rope_inv_freq(d, base), persistent=False)
        self._fill(int(max_len))

    def _fill(self, length):
        cos, sin = _angles(torch.arange(length, device=self.inv_freq.device), self.inv_freq)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, q, k, positions):
        if q.shape[-1] != self.d:
            raise ValueError(f"last dim of q is {q.shape[-1]}; expected d={self.d}")
        if k.shape[-1] != self.d:
            raise ValueError(f"last dim of k is {k.shape[-1]}; expected d={self.d}")
        positions = torch.as_tensor(positions, device=self.inv_freq.device)
        if positions.dtype.is_floating_point or (positions.numel() > 0 and int(positions.min()) < 0):
            cos, sin = _angles(positions, self.inv_freq)
        else:
            top = int(positions.max()) if positions.numel() else -1
            if top >= self.cos.shape[0]:
                self._fill(max(top + 1, 2 * self.cos.shape[0]))
            cos, sin = self.cos[positions], self.sin[positions]
        cos, sin = cos.to(q.device), sin.to(q.device)
        return _rotate(q, cos, sin, self.interleaved), _rotate(k, cos, sin, self.interleaved)
