"""Section 3, sinusoidal encodings: reference solutions.

This module is the single source of the solution cells in source_notebooks/03_sinusoidal:
`python -m course.build` copies each definition into its tagged cell.
"""
import math

import torch


def sinusoidal_wavelengths(d, base=10000.0):
    """Wavelengths 2*pi*base^(2k/d), k = 0 .. d/2 - 1, as a float32 tensor of shape (d/2,).

    The wavelength of pair k is the number of positions after which its (sin, cos)
    values repeat. Odd d raises ValueError.
    """
    ### BEGIN SOLUTION
    if d < 2 or d % 2:
        raise ValueError(f"d must be a positive even number, got d={d}")
    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d
    return (2 * math.pi * float(base) ** exponents).to(torch.float32)
    ### END SOLUTION


def sinusoidal_encoding(positions, d, base=10000.0):
    """Sinusoidal encoding of `positions` (any shape, integer or fractional): (*positions.shape, d).

    Feature 2k is sin(p * base^(-2k/d)) and feature 2k+1 is cos(p * base^(-2k/d)).
    Float32 result, float64 when positions are float64. Odd d raises ValueError.
    """
    ### BEGIN SOLUTION
    if d < 2 or d % 2:
        raise ValueError(f"d must be a positive even number, got d={d}")
    positions = torch.as_tensor(positions)
    out_dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    # Angles in float64: p * w loses digits in float32 once p reaches the thousands.
    exponents = torch.arange(0, d, 2, dtype=torch.float64, device=positions.device) / d
    inv_freq = float(base) ** -exponents
    angles = positions.to(torch.float64)[..., None] * inv_freq
    encoding = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
    return encoding.to(out_dtype)
    ### END SOLUTION


def sinusoidal_table(t, d, base=10000.0):
    """The encodings of positions 0 .. t-1 as a float32 table of shape (t, d)."""
    ### BEGIN SOLUTION
    if t < 1:
        raise ValueError(f"the table length t must be at least 1, got t={t}")
    return sinusoidal_encoding(torch.arange(t), d, base)
    ### END SOLUTION


def sinusoidal_offset_matrix(k, d, base=10000.0):
    """The (d, d) matrix M with sinusoidal_encoding(p + k) == M @ sinusoidal_encoding(p) for every p.

    Block-diagonal: pair j gets [[cos(k w_j), sin(k w_j)], [-sin(k w_j), cos(k w_j)]],
    w_j = base^(-2j/d). Float32 (float64 when k is a float64 tensor).
    """
    ### BEGIN SOLUTION
    if d < 2 or d % 2:
        raise ValueError(f"d must be a positive even number, got d={d}")
    k = torch.as_tensor(k)
    if k.numel() != 1:
        raise ValueError(f"the offset k must be a single number, got a tensor of shape {tuple(k.shape)}")
    out_dtype = torch.float64 if k.dtype == torch.float64 else torch.float32
    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d
    angles = float(k) * float(base) ** -exponents
    cos, sin = angles.cos(), angles.sin()
    even = torch.arange(0, d, 2)
    M = torch.zeros(d, d, dtype=torch.float64)
    # sin(a + b) = sin a cos b + cos a sin b;  cos(a + b) = cos a cos b - sin a sin b
    M[even, even], M[even, even + 1] = cos, sin
    M[even + 1, even], M[even + 1, even + 1] = -sin, cos
    return M.to(out_dtype)
    ### END SOLUTION
