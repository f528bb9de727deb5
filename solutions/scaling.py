"""Section 8, context scaling: reference solutions.

This module is the single source of the solution cells in source_notebooks/08_scaling:
`python -m course.build` copies each definition into its tagged cell.

Every builder returns a float32 table of d/2 inverse frequencies (one per rotary pair),
computed in float64 and rounded once at the end. The values match what Hugging Face
transformers (modeling_rope_utils) computes for the rope types "linear", "dynamic",
"yarn" and "llama3"; rope_from_config reads a model's config dict into the table and
the attention scaling transformers' ROPE_INIT_FUNCTIONS return.
"""
import math

import torch


def unscaled_inv_freq(d, base=10000.0):
    """RoPE's frequency ladder base^(-2k/d), k = 0 .. d/2 - 1, as a float64 tensor (d/2,).

    The same ladder as section 6, kept in float64 so the scaled tables below round once.
    """
    ### BEGIN SOLUTION
    if d < 2 or d % 2:
        raise ValueError(f"d must be a positive even number, got d={d}")
    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d
    return float(base) ** -exponents
    ### END SOLUTION


def linear_scaled_inv_freq(d, base, factor):
    """Position interpolation: every inverse frequency divided by `factor` (float32, (d/2,)).

    Dividing the frequencies is the same as dividing the positions: angle = (p / factor) * theta_k.
    """
    ### BEGIN SOLUTION
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got factor={factor}")
    return (unscaled_inv_freq(d, base) / factor).to(torch.float32)
    ### END SOLUTION


def ntk_scaled_base(base, factor, d):
    """NTK-aware base: base * factor^(d/(d-2)), a Python float.

    With this base the slowest pair (k = d/2 - 1) turns exactly `factor` times slower,
    while the fastest pair (k = 0) keeps its frequency.
    """
    ### BEGIN SOLUTION
    if d <= 2 or d % 2:
        raise ValueError(f"d must be an even number greater than 2, got d={d}")
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got factor={factor}")
    return float(base) * float(factor) ** (d / (d - 2))
    ### END SOLUTION


def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    """Dynamic NTK: the NTK base for the current length, float32 (d/2,).

    With s = max(seq_len, original_max_len) the base becomes
    base * (factor * s / original_max_len - (factor - 1))^(d/(d-2)); at or below the
    original length it is the unscaled ladder.
    """
    ### BEGIN SOLUTION
    if d <= 2 or d % 2:
        raise ValueError(f"d must be an even number greater than 2, got d={d}")
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got factor={factor}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got seq_len={seq_len}")
    if original_max_len < 1:
        raise ValueError(f"original_max_len must be at least 1, got original_max_len={original_max_len}")
    s = max(seq_len, original_max_len)
    stretch = factor * s / original_max_len - (factor - 1)
    new_base = float(base) * stretch ** (d / (d - 2))
    return unscaled_inv_freq(d, new_base).to(torch.float32)
    ### END SOLUTION


def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    """YaRN: NTK-by-parts inverse frequencies (float32, (d/2,)) and the attention factor.

    Pair k makes r_k = original_max_len * theta_k / (2 pi) turns over the original context.
    Pairs with more than beta_fast turns keep theta_k (extrapolation), pairs with fewer than
    beta_slow turns get theta_k / factor (interpolation), and a linear ramp over the pair
    index blends the two in between. The ramp ends are the (fractional) pair indices where
    r_k equals beta_fast and beta_slow, rounded outwards (floor, ceil) when `truncate`,
    then clipped to [0, d - 1]. The attention factor is 0.1 ln(factor) + 1 (1.0 when
    factor <= 1); models multiply cos and sin by it.
    """
    ### BEGIN SOLUTION
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got factor={factor}")
    if original_max_len < 1:
        raise ValueError(f"original_max_len must be at least 1, got original_max_len={original_max_len}")
    inv_freq = unscaled_inv_freq(d, base)

    def pair_with_turns(turns):
        # solve original_max_len * base^(-2k/d) / (2 pi) = turns for k
        return d * math.log(original_max_len / (turns * 2 * math.pi)) / (2 * math.log(base))

    low, high = pair_with_turns(beta_fast), pair_with_turns(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001  # avoid dividing by zero
    ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    # ramp 0: fast pairs, keep (extrapolate); ramp 1: slow pairs, divide by factor (interpolate)
    scaled = inv_freq * (1 - ramp) + (inv_freq / factor) * ramp
    attention_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    return scaled.to(torch.float32), attention_factor
    ### END SOLUTION


def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    """Llama 3.1 frequency scaling, float32 (d/2,).

    Wavelengths 2 pi / theta_k shorter than original_max_len / high_freq_factor keep theta_k;
    longer than original_max_len / low_freq_factor get theta_k / factor; in between,
    theta_k * ((1 - a) / factor + a) with a = (original_max_len / wavelength - low_freq_factor)
    / (high_freq_factor - low_freq_factor).
    """
    ### BEGIN SOLUTION
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got factor={factor}")
    if original_max_len < 1:
        raise ValueError(f"original_max_len must be at least 1, got original_max_len={original_max_len}")
    if high_freq_factor <= low_freq_factor:
        raise ValueError(
            f"high_freq_factor must exceed low_freq_factor, got high_freq_factor={high_freq_factor}, "
            f"low_freq_factor={low_freq_factor}"
        )
    inv_freq = unscaled_inv_freq(d, base)
    wavelength = 2 * math.pi / inv_freq
    smooth = (original_max_len / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    scaled = torch.where(
        wavelength > original_max_len / low_freq_factor,
        inv_freq / factor,
        torch.where(wavelength < original_max_len / high_freq_factor, inv_freq, blended),
    )
    return scaled.to(torch.float32)
    ### END SOLUTION


def rope_from_config(config, head_dim=None, seq_len=None):
    """Read a Hugging Face style config (a plain dict) into (inv_freq, attention_scaling).

    Keys read (as a model's config.json writes them):
      top level: `rope_theta` (default 10000.0), `hidden_size`, `num_attention_heads`,
        optional `head_dim`, `partial_rotary_factor` (default 1.0), `max_position_embeddings`,
        `original_max_position_embeddings` (Phi-3 writes it here; it wins over the rope dict's),
        and the rope dict `rope_parameters` (transformers 5) or `rope_scaling` (older configs;
        None or missing means plain RoPE). Keys in the rope dict override the top level ones.
      rope dict: `rope_type` (or the legacy `type`): "default", "linear", "dynamic", "yarn",
        "llama3" or "longrope"; `factor`; `original_max_position_embeddings` (default
        max_position_embeddings); yarn: `beta_fast` (32), `beta_slow` (1), `truncate` (True),
        `attention_factor`, `mscale`, `mscale_all_dim`; llama3: `low_freq_factor`,
        `high_freq_factor`; longrope: `short_factor`, `long_factor` (rotary_dim/2 numbers each),
        `attention_factor`.
    `head_dim`, when given, replaces the config's head size (e.g. DeepSeek's qk_rope_head_dim).
    The rotary size is int(head_size * partial_rotary_factor). `seq_len` is the current
    length: "dynamic" stretches its base for it (None: max_position_embeddings, no stretch);
    "longrope" uses long_factor when seq_len > original_max_position_embeddings, otherwise
    (and when None) short_factor. Values are those of transformers' ROPE_INIT_FUNCTIONS.
    """
    ### BEGIN SOLUTION
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    rope_type = rope.get("rope_type", rope.get("type")) or "default"
    base = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    partial = rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0))
    if head_dim is None:
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    dim = int(head_dim * partial)
    max_len = config.get("max_position_embeddings")
    original = config.get("original_max_position_embeddings") or rope.get("original_max_position_embeddings") or max_len

    if rope_type == "default":
        return unscaled_inv_freq(dim, base).to(torch.float32), 1.0
    if rope_type == "linear":
        return linear_scaled_inv_freq(dim, base, rope["factor"]), 1.0
    if rope_type == "dynamic":
        # transformers stretches relative to max_position_embeddings here
        length = max_len if seq_len is None else seq_len
        return dynamic_ntk_inv_freq(dim, base, rope["factor"], length, max_len), 1.0
    if rope_type == "llama3":
        return llama3_inv_freq(dim, base, rope["factor"], original,
                               rope["low_freq_factor"], rope["high_freq_factor"]), 1.0

    factor = rope.get("factor")
    if factor is None:
        factor = max_len / original

    if rope_type == "yarn":
        inv_freq, attention = yarn_inv_freq(dim, base, factor, original, rope.get("beta_fast") or 32.0,
                                            rope.get("beta_slow") or 1.0, rope.get("truncate", True))

        def mscale(scale, m=1.0):
            return 0.1 * m * math.log(scale) + 1.0 if scale > 1 else 1.0

        if rope.get("attention_factor") is not None:
            attention = rope["attention_factor"]
        elif rope.get("mscale") and rope.get("mscale_all_dim"):
            attention = mscale(factor, rope["mscale"]) / mscale(factor, rope["mscale_all_dim"])
        return inv_freq, float(attention)
    if rope_type == "longrope":
        use_long = seq_len is not None and seq_len > original
        ext = torch.tensor(rope["long_factor" if use_long else "short_factor"], dtype=torch.float64)
        if ext.shape != (dim // 2,):
            raise ValueError(f"longrope needs {dim // 2} factors (rotary_dim/2), got {tuple(ext.shape)}")
        attention = rope.get("attention_factor")
        if attention is None:
            attention = math.sqrt(1 + math.log(factor) / math.log(original)) if factor > 1 else 1.0
        return (unscaled_inv_freq(dim, base) / ext).to(torch.float32), float(attention)
    raise ValueError(f"unknown rope_type {rope_type!r}")
    ### END SOLUTION
