"""Sinusoidal encodings through complex numbers: exp(i p w) = cos + i sin via torch.polar,
view_as_real, then the (cos, sin) pair flipped to (sin, cos); the offset matrix is the real
2x2 form of multiplying by exp(i k w), one block per pair."""
import math

import torch


def _check_d(d):
    if d < 2 or d % 2 != 0:
        raise ValueError(f"d={d} is not a positive even number: features come in (sin, cos) pairs")


def _freqs(d, base, dtype, device=None):
    k = torch.arange(d // 2, dtype=torch.float64, device=device)
    return torch.pow(torch.tensor(float(base), dtype=torch.float64, device=device), -2.0 * k / d).to(dtype)


def sinusoidal_encoding(positions, d, base=10000.0):
    _check_d(d)
    positions = torch.as_tensor(positions)
    real = torch.float64 if positions.dtype == torch.float64 else torch.float32
    theta = positions.to(real).unsqueeze(-1) * _freqs(d, base, real, positions.device)
    z = torch.polar(torch.ones_like(theta), theta)        # cos + i sin
    cos_sin = torch.view_as_real(z)                        # (..., d/2, 2) = (cos, sin)
    return cos_sin.flip(-1).reshape(*positions.shape, d)   # (sin, cos) interleaved


def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"t={t}: the table needs a positive length")
    return sinusoidal_encoding(torch.arange(t, dtype=torch.float32), d, base)


def sinusoidal_offset_matrix(k, d, base=10000.0):
    _check_d(d)
    rot = torch.polar(torch.ones(d // 2, dtype=torch.float64), float(k) * _freqs(d, base, torch.float64))
    c, s = rot.real, rot.imag
    # (sin, cos) -> (sin c + cos s, cos c - sin s): the pair as the complex number cos + i sin times rot
    blocks = torch.stack((torch.stack((c, s), -1), torch.stack((-s, c), -1)), -2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks.unbind(0)).to(torch.float32)


def sinusoidal_wavelengths(d, base=10000.0):
    _check_d(d)
    return (2 * math.pi / _freqs(d, base, torch.float64)).to(torch.float32)
