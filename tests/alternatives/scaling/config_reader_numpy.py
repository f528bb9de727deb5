"""A correct rope_from_config written another way: NumPy float64 throughout, a table of
readers per rope type, none of the section's other functions reused."""
import math

import numpy as np
import torch


def _ladder(dim, base):
    return base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def _yarn(p, dim, base, max_len, original):
    factor = p.get("factor") or max_len / original
    beta_fast, beta_slow = p.get("beta_fast") or 32, p.get("beta_slow") or 1
    where = lambda turns: dim * math.log(original / (turns * 2 * math.pi)) / (2 * math.log(base))  # noqa: E731
    lo, hi = where(beta_fast), where(beta_slow)
    if p.get("truncate", True):
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    hi = hi + 0.001 if hi == lo else hi
    w = np.clip((np.arange(dim // 2) - lo) / (hi - lo), 0, 1)
    theta = _ladder(dim, base)
    table = theta * (1 - w) + theta / factor * w
    m = lambda s, k=1.0: 1.0 if s <= 1 else 0.1 * k * math.log(s) + 1.0  # noqa: E731
    if p.get("attention_factor") is not None:
        att = p["attention_factor"]
    elif p.get("mscale") and p.get("mscale_all_dim"):
        att = m(factor, p["mscale"]) / m(factor, p["mscale_all_dim"])
    else:
        att = m(factor)
    return table, att


def _llama3(p, dim, base, max_len, original):
    theta = _ladder(dim, base)
    wl = 2 * np.pi / theta
    lo, hi, f = p["low_freq_factor"], p["high_freq_factor"], p["factor"]
    a = (original / wl - lo) / (hi - lo)
    out = np.where(wl > original / lo, theta / f, np.where(wl < original / hi, theta, theta * ((1 - a) / f + a)))
    return out, 1.0


def _longrope(p, dim, base, max_len, original, seq_len):
    factor = p.get("factor") or max_len / original
    ext = np.array(p["long_factor"] if seq_len and seq_len > original else p["short_factor"], dtype=np.float64)
    att = p.get("attention_factor")
    if att is None:
        att = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original))
    return _ladder(dim, base) / ext, att


def rope_from_config(config, head_dim=None, seq_len=None):
    p = {**(config.get("rope_scaling") or {}), **(config.get("rope_parameters") or {})}
    kind = p.get("rope_type") or p.get("type") or "default"
    base = p.get("rope_theta") or config.get("rope_theta") or 10000.0
    frac = p.get("partial_rotary_factor") or config.get("partial_rotary_factor") or 1.0
    hd = head_dim or config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    dim = int(hd * frac)
    max_len = config.get("max_position_embeddings")
    original = config.get("original_max_position_embeddings") or p.get("original_max_position_embeddings") or max_len
    if kind == "default":
        table, att = _ladder(dim, base), 1.0
    elif kind == "linear":
        table, att = _ladder(dim, base) / p["factor"], 1.0
    elif kind == "dynamic":
        s = max(seq_len or max_len, max_len)
        f = p["factor"]
        table, att = _ladder(dim, base * (f * s / max_len - (f - 1)) ** (dim / (dim - 2))), 1.0
    elif kind == "yarn":
        table, att = _yarn(p, dim, base, max_len, original)
    elif kind == "llama3":
        table, att = _llama3(p, dim, base, max_len, original)
    elif kind == "longrope":
        table, att = _longrope(p, dim, base, max_len, original, seq_len)
    else:
        raise ValueError(f"unknown rope type {kind}")
    return torch.from_numpy(np.asarray(table)).float(), float(att)
