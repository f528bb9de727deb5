"""Sinusoidal encodings as rotations of the position-0 vector (0, 1, 0, 1, ...): each pair is
turned by an explicit 2x2 rotation (einsum over block matrices), and the offset matrix is
the matrix exponential of k times the block-diagonal generator (torch.linalg.matrix_exp)."""
import math

import torch


def _omega(d, base, dtype=torch.float64, device=None):
    if d % 2 != 0 or d < 2:
        raise ValueError(f"sinusoidal features need an even d, got d={d}")
    return torch.exp(torch.arange(0, d, 2, dtype=torch.float64, device=device) * (-math.log(base) / d)).to(dtype)


def _blocks(angles):
    c, s = torch.cos(angles), torch.sin(angles)
    return torch.stack((torch.stack((c, s), -1), torch.stack((-s, c), -1)), -2)  # (..., 2, 2)


def sinusoidal_encoding(positions, d, base=10000.0):
    positions = torch.as_tensor(positions)
    wide = torch.float64 if positions.dtype == torch.float64 else torch.float32
    angles = positions.to(wide)[..., None] * _omega(d, base, wide, positions.device)
    start = torch.tensor([0.0, 1.0], dtype=wide, device=positions.device)  # (sin 0, cos 0)
    pairs = torch.einsum("...kij,j->...ki", _blocks(angles), start)
    return pairs.reshape(*positions.shape, d)


def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"sinusoidal_table needs t >= 1 (t={t})")
    return sinusoidal_encoding(torch.arange(t), d, base)


def sinusoidal_offset_matrix(k, d, base=10000.0):
    w = _omega(d, base)
    G = torch.zeros(d, d, dtype=torch.float64)
    ev = torch.arange(0, d, 2)
    G[ev, ev + 1] = w        # d/dk sin(k w) = w cos(k w)
    G[ev + 1, ev] = -w       # d/dk cos(k w) = -w sin(k w)
    return torch.linalg.matrix_exp(float(k) * G).to(torch.float32)


def sinusoidal_wavelengths(d, base=10000.0):
    return (2 * math.pi / _omega(d, base)).float()
