"""A correct sinusoidal encoding written another way: float32 angles (as most code bases do),
exp/log frequencies, concatenate-then-permute, torch.block_diag."""
import math

import torch


def _inv_freq(d, base, device=None, dtype=torch.float32):
    if d <= 0 or d % 2 == 1:
        raise ValueError(f"d has to be even and positive, not {d}")
    return torch.exp(torch.arange(0, d, 2, device=device, dtype=dtype) * (-math.log(base) / d))


def sinusoidal_encoding(positions, d, base=10000.0):
    positions = torch.as_tensor(positions)
    wide = torch.float64 if positions.dtype == torch.float64 else torch.float32
    inv_freq = _inv_freq(d, base, positions.device, wide)
    angles = torch.einsum("...,f->...f", positions.to(wide), inv_freq)
    cat = torch.cat((angles.sin(), angles.cos()), dim=-1)
    half = d // 2
    order = torch.stack((torch.arange(half), torch.arange(half) + half), dim=-1).flatten().to(positions.device)
    return cat.index_select(-1, order)


def sinusoidal_table(t, d, base=10000.0):
    if t <= 0:
        raise ValueError(f"t={t}: a table needs at least one row")
    pe = torch.zeros(t, d)
    position = torch.arange(t, dtype=torch.float32).unsqueeze(1)
    div_term = _inv_freq(d, base)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def sinusoidal_offset_matrix(k, d, base=10000.0):
    theta = float(k) * _inv_freq(d, base, dtype=torch.float64)
    blocks = [torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) for a in theta.tolist()]
    return torch.block_diag(*blocks).float()


def sinusoidal_wavelengths(d, base=10000.0):
    return (2 * math.pi / _inv_freq(d, base, dtype=torch.float64)).float()
