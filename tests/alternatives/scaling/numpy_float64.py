"""Context scaling computed in NumPy float64: every ladder is np.power(base, -2k/d), the
YaRN ramp uses np.clip, Llama 3.1 uses np.select over the three wavelength bands; tables
are rounded to float32 tensors once at the end; scalar results stay NumPy float64 (a
subclass of Python float)."""
import math

import numpy as np
import torch


def _ladder(d, base):
    if d < 2 or d % 2:
        raise ValueError(f"d={d} must be an even number of rotary features")
    return np.power(float(base), -np.arange(0, d, 2, dtype=np.float64) / d)


def _factor_ok(factor):
    if factor < 1:
        raise ValueError(f"scaling factor must be >= 1, got factor={factor}")


def _out(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64)).to(torch.float32)


def linear_scaled_inv_freq(d, base, factor):
    _factor_ok(factor)
    return _out(_ladder(d, base) / factor)


def ntk_scaled_base(base, factor, d):
    if d <= 2:
        raise ValueError(f"d={d}: d/(d-2) needs d > 2")
    _factor_ok(factor)
    return np.float64(base) * np.power(np.float64(factor), d / (d - 2))     # np.float64 is a float


def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    if d <= 2:
        raise ValueError(f"d={d}: d/(d-2) needs d > 2")
    _factor_ok(factor)
    if seq_len < 1:
        raise ValueError(f"seq_len={seq_len} must be >= 1")
    if original_max_len < 1:
        raise ValueError(f"original_max_len={original_max_len} must be >= 1")
    s = max(seq_len, original_max_len)
    new_base = base * (factor * s / original_max_len - (factor - 1)) ** (d / (d - 2))
    return _out(_ladder(d, new_base))


def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    _factor_ok(factor)
    if original_max_len < 1:
        raise ValueError(f"original_max_len={original_max_len} must be >= 1")
    theta = _ladder(d, base)

    def dim_for(rotations):
        return d * np.log(original_max_len / (rotations * 2 * np.pi)) / (2 * np.log(base))

    low, high = dim_for(beta_fast), dim_for(beta_slow)
    if truncate:
        low, high = np.floor(low), np.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high = high + 0.001
    ramp = np.clip((np.arange(d // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    extrapolation_factor = 1.0 - ramp
    inv = (theta / factor) * (1.0 - extrapolation_factor) + theta * extrapolation_factor
    mscale = 0.1 * np.log(factor) + 1.0 if factor > 1 else np.float64(1.0)
    return _out(inv), mscale


def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    _factor_ok(factor)
    if original_max_len < 1:
        raise ValueError(f"original_max_len={original_max_len} must be >= 1")
    theta = _ladder(d, base)
    wavelen = 2 * np.pi / theta
    low_wavelen = original_max_len / low_freq_factor
    high_wavelen = original_max_len / high_freq_factor
    with np.errstate(divide="ignore", invalid="ignore"):
        smooth = (original_max_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    inv = np.select([wavelen < high_wavelen, wavelen > low_wavelen],
                    [theta, theta / factor],
                    default=(1 - smooth) * theta / factor + smooth * theta)
    return _out(inv)
