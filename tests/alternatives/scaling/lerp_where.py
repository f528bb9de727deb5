"""Context scaling with torch.lerp and torch.where on float64 tensors: YaRN blends the
interpolated and extrapolated ladders with torch.lerp(weight=ramp), Llama 3.1 lerps between
theta/factor and theta with the smooth factor clamped to [0, 1] (which reproduces the three
bands), dynamic NTK reuses ntk_scaled_base with the effective factor. Staying in torch, the
YaRN attention factor comes back as a 0-d float64 tensor (the contract does not fix its type)."""
import math

import torch


def _theta(d, base):
    if d < 2 or d % 2:
        raise ValueError(f"expected an even d >= 2, got d={d}")
    k = torch.arange(d // 2, dtype=torch.float64)
    return torch.exp(-(2 * k / d) * math.log(float(base)))


def _factor(factor):
    if not factor >= 1:
        raise ValueError(f"factor must be >= 1 (factor={factor})")


def linear_scaled_inv_freq(d, base, factor):
    _factor(factor)
    return torch.div(_theta(d, base), factor).float()


def ntk_scaled_base(base, factor, d):
    _factor(factor)
    if d <= 2:
        raise ValueError(f"expected d > 2 so that d/(d-2) is defined, got d={d}")
    return math.exp(math.log(base) + (d / (d - 2)) * math.log(factor))


def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    _factor(factor)
    if seq_len < 1 or original_max_len < 1:
        name = "seq_len" if seq_len < 1 else "original_max_len"
        raise ValueError(f"{name} must be a length >= 1")
    effective = factor * max(seq_len, original_max_len) / original_max_len - (factor - 1)
    return _theta(d, ntk_scaled_base(base, effective, d)).float()


def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    _factor(factor)
    if original_max_len < 1:
        raise ValueError("original_max_len must be a length >= 1")
    theta = _theta(d, base)
    bounds = [d * math.log(original_max_len / (b * 2 * math.pi)) / (2 * math.log(base)) for b in (beta_fast, beta_slow)]
    if truncate:
        bounds = [math.floor(bounds[0]), math.ceil(bounds[1])]
    low, high = max(bounds[0], 0), min(bounds[1], d - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0.0, 1.0)
    inv = torch.lerp(theta, theta / factor, ramp)
    attention_factor = 1.0 + 0.1 * torch.log(torch.tensor(float(factor), dtype=torch.float64)) if factor > 1 \
        else torch.tensor(1.0, dtype=torch.float64)
    return inv.float(), attention_factor


def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    _factor(factor)
    if original_max_len < 1:
        raise ValueError("original_max_len must be a length >= 1")
    theta = _theta(d, base)
    wavelen = 2 * math.pi / theta
    smooth = (original_max_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    # smooth >= 1 exactly when wavelen <= original_max_len / high_freq_factor (keep theta),
    # smooth <= 0 exactly when wavelen >= original_max_len / low_freq_factor (theta / factor)
    inv = torch.lerp(theta / factor, theta, smooth.clamp(0.0, 1.0))
    return inv.float()
