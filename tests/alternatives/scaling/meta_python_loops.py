"""Context scaling with plain Python loops over the frequency list, the way Meta's
reference code writes Llama 3.1's `apply_scaling` (one if/elif/else per frequency) and
the YaRN paper's reference code writes its ramp; every number is a Python float, turned
into a float32 tensor at the end."""
import math

import torch


def _freqs(d, base):
    if d % 2 or d < 2:
        raise ValueError(f"d must be even (got d={d})")
    return [1.0 / (base ** (i / d)) for i in range(0, d, 2)]


def _check_factor(factor):
    if factor < 1:
        raise ValueError(f"factor must not be below 1 (got factor={factor})")


def linear_scaled_inv_freq(d, base, factor):
    _check_factor(factor)
    return torch.tensor([f / factor for f in _freqs(d, base)], dtype=torch.float32)


def ntk_scaled_base(base, factor, d):
    _check_factor(factor)
    if d <= 2:
        raise ValueError(f"d must exceed 2 (got d={d})")
    return base * factor ** (d / (d - 2))


def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    _check_factor(factor)
    if d <= 2:
        raise ValueError(f"d must exceed 2 (got d={d})")
    for name, value in (("seq_len", seq_len), ("original_max_len", original_max_len)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1 (got {name}={value})")
    seq_len = max(seq_len, original_max_len)
    scaled = base * ((factor * seq_len / original_max_len) - (factor - 1)) ** (d / (d - 2))
    return torch.tensor(_freqs(d, scaled), dtype=torch.float32)


def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    _check_factor(factor)
    if original_max_len < 1:
        raise ValueError(f"original_max_len must be at least 1 (got {original_max_len})")
    freqs = _freqs(d, base)

    def correction_dim(num_rotations):
        return (d * math.log(original_max_len / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001
    out = []
    for i, f in enumerate(freqs):
        ramp = min(max((i - low) / (high - low), 0.0), 1.0)
        keep = 1.0 - ramp                      # share of the original (extrapolated) frequency
        out.append((f / factor) * (1.0 - keep) + f * keep)
    attention_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    return torch.tensor(out, dtype=torch.float32), attention_factor


def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    _check_factor(factor)
    if original_max_len < 1:
        raise ValueError(f"original_max_len must be at least 1 (got {original_max_len})")
    scale_factor = factor
    old_context_len = original_max_len
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    new_freqs = []
    for freq in _freqs(d, base):
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            new_freqs.append(freq)
        elif wavelen > low_freq_wavelen:
            new_freqs.append(freq / scale_factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            new_freqs.append((1 - smooth) * freq / scale_factor + smooth * freq)
    return torch.tensor(new_freqs, dtype=torch.float32)
