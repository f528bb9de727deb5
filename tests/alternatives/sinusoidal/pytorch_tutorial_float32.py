"""Sinusoidal encodings as the PyTorch transformer tutorial writes them, in float32
throughout: div_term = exp(arange(0, d, 2) * (-ln(base) / d)), a `pe` table filled with
pe[:, 0::2] = sin and pe[:, 1::2] = cos; a PositionalEncoding module keeps that table as a
buffer and grows it on demand. Float64 positions get a float64 result computed at float32
accuracy (the contract holds float64 inputs to float32 accuracy)."""
import math

import torch
from torch import nn


def _div_term(d, base, device=None):
    if d % 2 != 0:
        raise ValueError(f"d_model (d={d}) must be even to pair sin and cos")
    return torch.exp(torch.arange(0, d, 2, device=device).float() * (-math.log(base) / d))


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, base=10000.0, max_len=64):
        super().__init__()
        self.d_model, self.base = d_model, base
        self.register_buffer("pe", self._build(max_len), persistent=False)

    def _build(self, max_len):
        position = torch.arange(max_len).unsqueeze(1).float()
        div_term = _div_term(self.d_model, self.base)
        pe = torch.zeros(max_len, self.d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        return pe

    def table(self, t):
        if t > self.pe.size(0):
            self.pe = self._build(max(t, 2 * self.pe.size(0)))
        return self.pe[:t].clone()


def sinusoidal_encoding(positions, d, base=10000.0):
    positions = torch.as_tensor(positions)
    angles = positions.float().unsqueeze(-1) * _div_term(d, base, positions.device)
    pe = torch.empty(*angles.shape[:-1], d, device=positions.device)
    pe[..., 0::2] = torch.sin(angles)
    pe[..., 1::2] = torch.cos(angles)
    return pe.double() if positions.dtype == torch.float64 else pe


def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"max length t={t} must be positive")
    return PositionalEncoding(d, base, max_len=1).table(t)


def sinusoidal_offset_matrix(k, d, base=10000.0):
    a = float(k) * _div_term(d, base)
    M = torch.zeros(d, d)
    M[0::2, 0::2] = torch.diag(torch.cos(a))
    M[0::2, 1::2] = torch.diag(torch.sin(a))
    M[1::2, 0::2] = torch.diag(-torch.sin(a))
    M[1::2, 1::2] = torch.diag(torch.cos(a))
    return M


def sinusoidal_wavelengths(d, base=10000.0):
    return 2 * math.pi / _div_term(d, base)
