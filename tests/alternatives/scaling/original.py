"""A correct context-scaling section written another way: float32 tables computed the way
transformers' modeling_rope_utils does, without float64."""
import math
import torch

def _inv(d, base):
    if d % 2 or d < 2:
        raise ValueError(f"bad d={d}")
    return 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))

def linear_scaled_inv_freq(d, base, factor):
    if factor < 1: raise ValueError("factor")
    return _inv(d, base) / factor

def ntk_scaled_base(base, factor, d):
    if d <= 2: raise ValueError("d")
    if factor < 1: raise ValueError("factor")
    return base * factor ** (d / (d - 2))

def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    if d <= 2 or d % 2: raise ValueError("d")
    if factor < 1: raise ValueError("factor")
    if seq_len < 1: raise ValueError("seq_len")
    if original_max_len < 1: raise ValueError("original_max_len")
    seq_len = max(seq_len, original_max_len)
    base = base * ((factor * seq_len / original_max_len) - (factor - 1)) ** (d / (d - 2))
    return _inv(d, base)

def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    if d % 2: raise ValueError("d")
    if factor < 1: raise ValueError("factor")
    if original_max_len < 1: raise ValueError("original_max_len")
    def find_correction_dim(num_rotations):
        return (d * math.log(original_max_len / (num_rotations * 2 * math.pi))) / (2 * math.log(base))
    low, high = find_correction_dim(beta_fast), find_correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high: high += 0.001
    ramp = torch.clamp((torch.arange(d // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, d, 2).float() / d)
    extra, inter = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    ef = 1 - ramp
    return inter * (1 - ef) + extra * ef, (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)

def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    if d % 2: raise ValueError("d")
    if factor < 1: raise ValueError("factor")
    if original_max_len < 1: raise ValueError("original_max_len")
    inv_freq = _inv(d, base)
    low_wl, high_wl = original_max_len / low_freq_factor, original_max_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    out = torch.where(wavelen > low_wl, inv_freq / factor, inv_freq)
    smooth = (original_max_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * out / factor + smooth * out
    med = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(med, smoothed, out)
