"""Sinusoidal encodings with plain Python loops and the math module: every (position,
pair) angle is a Python float (double precision), lists are turned into tensors at the end;
the offset matrix is filled entry by entry."""
import math

import torch


def _need_even(d):
    if d <= 0 or d % 2 == 1:
        raise ValueError(f"odd or non-positive d ({d}); d must be even")


def sinusoidal_encoding(positions, d, base=10000.0):
    _need_even(d)
    positions = torch.as_tensor(positions)
    freqs = [base ** (-(2 * k) / d) for k in range(d // 2)]
    rows = []
    for p in positions.reshape(-1).tolist():
        row = []
        for w in freqs:
            row.append(math.sin(p * w))
            row.append(math.cos(p * w))
        rows.append(row)
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    return torch.tensor(rows, dtype=dtype, device=positions.device).reshape(*positions.shape, d)


def sinusoidal_table(t, d, base=10000.0):
    if t < 1:
        raise ValueError("t must be >= 1")
    return sinusoidal_encoding(list(range(t)), d, base)


def sinusoidal_offset_matrix(k, d, base=10000.0):
    _need_even(d)
    M = [[0.0] * d for _ in range(d)]
    for j in range(d // 2):
        a = float(k) * base ** (-(2 * j) / d)
        c, s = math.cos(a), math.sin(a)
        M[2 * j][2 * j], M[2 * j][2 * j + 1] = c, s
        M[2 * j + 1][2 * j], M[2 * j + 1][2 * j + 1] = -s, c
    return torch.tensor(M, dtype=torch.float32)


def sinusoidal_wavelengths(d, base=10000.0):
    _need_even(d)
    return torch.tensor([2 * math.pi * base ** ((2 * j) / d) for j in range(d // 2)], dtype=torch.float32)
