"""Sinusoidal encodings the fairseq / Hugging Face way: an nn.Module holding a non-persistent
`inv_freq` buffer and a table buffer that is rebuilt larger on demand; an lru_cache'd
module factory per (d, base); the offset matrix is assembled with index_put."""
import functools
import math

import torch
from torch import nn


class SinusoidalPositionalEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, init_len=16):
        super().__init__()
        if d % 2:
            raise ValueError(f"embedding dim d={d} must be even")
        self.d = d
        exps = torch.arange(0, d, 2, dtype=torch.float64) / d
        self.register_buffer("inv_freq", torch.pow(float(base), -exps), persistent=False)
        self.register_buffer("table", self._make(init_len), persistent=False)

    def _make(self, n):
        angles = torch.outer(torch.arange(n, dtype=torch.float64), self.inv_freq)
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1).to(torch.float32)

    def rows(self, t):
        if t > self.table.shape[0]:
            self.table = self._make(max(t, 2 * self.table.shape[0]))
        return self.table[:t]

    def forward(self, positions):
        positions = torch.as_tensor(positions)
        out_dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
        angles = positions.to(torch.float64).unsqueeze(-1) * self.inv_freq.to(positions.device)
        enc = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
        return enc.to(out_dtype)


@functools.lru_cache(maxsize=None)
def _module(d, base):
    return SinusoidalPositionalEmbedding(d, base)


def sinusoidal_encoding(positions, d, base=10000.0):
    return _module(int(d), float(base))(positions)


def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"t={t}, expected a table length >= 1")
    return _module(int(d), float(base)).rows(int(t)).clone()


def sinusoidal_offset_matrix(k, d, base=10000.0):
    inv = _module(int(d), float(base)).inv_freq
    a = float(k) * inv
    i = torch.arange(0, d, 2)
    M = torch.zeros(d, d, dtype=torch.float64)
    M.index_put_((torch.cat((i, i, i + 1, i + 1)), torch.cat((i, i + 1, i, i + 1))),
                 torch.cat((a.cos(), a.sin(), -a.sin(), a.cos())))
    return M.float()


def sinusoidal_wavelengths(d, base=10000.0):
    return (2 * math.pi / _module(int(d), float(base)).inv_freq).float()
