"""Sinusoidal encodings in NumPy float64: np.outer-style angle grids, np.empty tables filled
through strided slices, np.kron-free block assembly for the offset matrix; results come
back as tensors (float32, or float64 for float64 positions) on the positions' device."""
import numpy as np
import torch


def _even(d):
    if d % 2 or d < 2:
        raise ValueError(f"need an even d for sin/cos pairs, got d={d}")


def _inv_freq(d, base):
    return np.power(float(base), -np.arange(0, d, 2, dtype=np.float64) / d)


def sinusoidal_encoding(positions, d, base=10000.0):
    _even(d)
    positions = torch.as_tensor(positions)
    p = positions.detach().cpu().to(torch.float64).numpy()
    angles = p[..., None] * _inv_freq(d, base)
    pe = np.empty(p.shape + (d,), dtype=np.float64)
    pe[..., 0::2] = np.sin(angles)
    pe[..., 1::2] = np.cos(angles)
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    return torch.from_numpy(pe).to(device=positions.device, dtype=dtype)


def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError(f"t must be at least 1, got t={t}")
    return sinusoidal_encoding(torch.from_numpy(np.arange(t, dtype=np.int64)), d, base)


def sinusoidal_offset_matrix(k, d, base=10000.0):
    _even(d)
    a = float(k) * _inv_freq(d, base)
    M = np.zeros((d, d), dtype=np.float64)
    ev = np.arange(0, d, 2)
    M[ev, ev] = np.cos(a)
    M[ev, ev + 1] = np.sin(a)
    M[ev + 1, ev] = -np.sin(a)
    M[ev + 1, ev + 1] = np.cos(a)
    return torch.from_numpy(M).float()


def sinusoidal_wavelengths(d, base=10000.0):
    _even(d)
    return torch.from_numpy(2.0 * np.pi / _inv_freq(d, base)).float()
