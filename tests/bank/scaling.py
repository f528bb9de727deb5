"""Wrong context-scaling implementations that learners really write."""
from dataclasses import replace

from tests.bank import Bug

BUGS = [
    # ------------------------------------------------------------ linear_scaled_inv_freq
    Bug("linear_multiplied", "scaling.linear_scaled_inv_freq", '''
def linear_scaled_inv_freq(d, base, factor):
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return (unscaled_inv_freq(d, base) * factor).float()
''', mistake="multiplied by the factor", key="pi-direction"),
    Bug("linear_base_times_factor", "scaling.linear_scaled_inv_freq", '''
def linear_scaled_inv_freq(d, base, factor):
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return unscaled_inv_freq(d, base * factor).float()
''', mistake="the base multiplied by the factor", key="pi-direction"),
    Bug("linear_float64", "scaling.linear_scaled_inv_freq", '''
def linear_scaled_inv_freq(d, base, factor):
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return unscaled_inv_freq(d, base) / factor
''', mistake="expected float32", key="wrong-dtype"),
    Bug("linear_accepts_small_factor", "scaling.linear_scaled_inv_freq", '''
def linear_scaled_inv_freq(d, base, factor):
    return (unscaled_inv_freq(d, base) / factor).float()
''', mistake="naming 'factor'", key="no-value-error"),

    # ------------------------------------------------------------ ntk_scaled_base
    Bug("ntk_exponent_half_d", "scaling.ntk_scaled_base", '''
def ntk_scaled_base(base, factor, d):
    if d <= 2 or d % 2:
        raise ValueError(f"d must be even and > 2, got d={d}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return base * factor ** (d / 2)
''', mistake="factor^(d/2)", key="ntk-exponent"),
    Bug("ntk_no_exponent", "scaling.ntk_scaled_base", '''
def ntk_scaled_base(base, factor, d):
    if d <= 2 or d % 2:
        raise ValueError(f"d must be even and > 2, got d={d}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return base * factor
''', mistake="without the exponent", key="ntk-exponent"),
    Bug("ntk_exponent_inverted", "scaling.ntk_scaled_base", '''
def ntk_scaled_base(base, factor, d):
    if d <= 2 or d % 2:
        raise ValueError(f"d must be even and > 2, got d={d}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return base * factor ** ((d - 2) / d)
''', mistake="upside down", key="ntk-exponent"),
    Bug("ntk_d2_zero_division", "scaling.ntk_scaled_base", '''
def ntk_scaled_base(base, factor, d):
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got factor={factor}")
    return base * factor ** (d / (d - 2))
''', mistake="naming 'd'", key="no-value-error"),
    Bug("ntk_returns_tensor", "scaling.ntk_scaled_base", '''
_right_ntk_scaled_base = ntk_scaled_base
def ntk_scaled_base(base, factor, d):
    return torch.tensor(_right_ntk_scaled_base(base, factor, d), dtype=torch.float64)
''', mistake="expected a Python float", key="python-float"),

    # ------------------------------------------------------------ dynamic_ntk_inv_freq
    Bug("dynamic_no_max", "scaling.dynamic_ntk_inv_freq", '''
def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    if d <= 2 or d % 2:
        raise ValueError(f"bad d={d}")
    if factor < 1 or seq_len < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor}, seq_len={seq_len} or original_max_len={original_max_len}")
    alpha = factor * seq_len / original_max_len - (factor - 1)
    new_base = base * alpha ** (d / (d - 2))
    return (1.0 / new_base ** (torch.arange(0, d, 2).float() / d)).float()
''', mistake="without max(seq_len, original_max_len)", key="dynamic-ntk"),
    Bug("dynamic_no_shift", "scaling.dynamic_ntk_inv_freq", '''
def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    if d <= 2 or d % 2:
        raise ValueError(f"bad d={d}")
    if factor < 1 or seq_len < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor}, seq_len={seq_len} or original_max_len={original_max_len}")
    s = max(seq_len, original_max_len)
    new_base = base * (factor * s / original_max_len) ** (d / (d - 2))
    return unscaled_inv_freq(d, new_base).float()
''', mistake="without subtracting (factor - 1)", key="dynamic-ntk"),
    Bug("dynamic_static", "scaling.dynamic_ntk_inv_freq", '''
def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    if d <= 2 or d % 2:
        raise ValueError(f"bad d={d}")
    if factor < 1 or seq_len < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor}, seq_len={seq_len} or original_max_len={original_max_len}")
    return unscaled_inv_freq(d, base * factor ** (d / (d - 2))).float()
''', mistake="static NTK scaling", key="dynamic-ntk"),
    Bug("dynamic_no_exponent", "scaling.dynamic_ntk_inv_freq", '''
def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    if d <= 2 or d % 2:
        raise ValueError(f"bad d={d}")
    if factor < 1 or seq_len < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor}, seq_len={seq_len} or original_max_len={original_max_len}")
    s = max(seq_len, original_max_len)
    return unscaled_inv_freq(d, base * (factor * s / original_max_len - (factor - 1))).float()
''', mistake="not raised to d/(d-2)", key="ntk-exponent"),
    Bug("dynamic_accepts_zero_length", "scaling.dynamic_ntk_inv_freq", '''
_right_dynamic = dynamic_ntk_inv_freq
def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    return _right_dynamic(d, base, factor, max(seq_len, 1), original_max_len)
''', mistake="naming 'seq_len'", key="no-value-error"),

    # ------------------------------------------------------------ yarn_inv_freq
    Bug("yarn_is_ntk_base_scaling", "scaling.yarn_inv_freq", '''
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    # the course seed's "YaRN": only the base changes
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    if factor < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor} or original_max_len={original_max_len}")
    new_base = base * factor ** (d / (d - 2))
    return unscaled_inv_freq(d, new_base).float(), 1.0
''', mistake="plain NTK-aware base scaling", key="yarn-ramp"),
    Bug("yarn_ramp_reversed", "scaling.yarn_inv_freq", '''
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    if factor < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor} or original_max_len={original_max_len}")
    theta = unscaled_inv_freq(d, base)
    dim = lambda r: d * math.log(original_max_len / (r * 2 * math.pi)) / (2 * math.log(base))
    low, high = dim(beta_fast), dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    scaled = theta / factor * (1 - ramp) + theta * ramp   # keep and divide mixed up
    return scaled.float(), (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
''', mistake="the ramp reversed", key="yarn-ramp"),
    Bug("yarn_pi_everywhere", "scaling.yarn_inv_freq", '''
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    if factor < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor} or original_max_len={original_max_len}")
    return (unscaled_inv_freq(d, base) / factor).float(), (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
''', mistake="position interpolation for every pair", key="yarn-ramp"),
    Bug("yarn_no_attention_factor", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    inv_freq, _ = _right_yarn(d, base, factor, original_max_len, beta_fast, beta_slow, truncate)
    return inv_freq, 1.0
''', mistake="missing attention factor", key="yarn-attention-factor"),
    Bug("yarn_attention_squared", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    inv_freq, mscale = _right_yarn(d, base, factor, original_max_len, beta_fast, beta_slow, truncate)
    return inv_freq, mscale ** 2   # the temperature 1/t instead of the factor on cos and sin
''', mistake="the logits end up multiplied by", key="yarn-attention-factor"),
    Bug("yarn_attention_log10", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    inv_freq, _ = _right_yarn(d, base, factor, original_max_len, beta_fast, beta_slow, truncate)
    return inv_freq, 0.1 * math.log10(factor) + 1.0
''', mistake="base-10 logarithm", key="yarn-attention-factor"),
    Bug("yarn_truncate_ignored", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    return _right_yarn(d, base, factor, original_max_len, beta_fast, beta_slow, True)
''', mistake="rounded although truncate=False", key="yarn-ramp"),
    Bug("yarn_never_rounds", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    return _right_yarn(d, base, factor, original_max_len, beta_fast, beta_slow, False)
''', mistake="not rounded outwards", key="yarn-ramp"),
    Bug("yarn_betas_swapped", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    return _right_yarn(d, base, factor, original_max_len, beta_slow, beta_fast, truncate)
''', mistake="beta_fast and beta_slow swapped", key="yarn-ramp"),
    Bug("yarn_clip_at_last_pair", "scaling.yarn_inv_freq", '''
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    if factor < 1 or original_max_len < 1:
        raise ValueError(f"bad factor={factor} or original_max_len={original_max_len}")
    theta = unscaled_inv_freq(d, base)
    dim = lambda r: d * math.log(original_max_len / (r * 2 * math.pi)) / (2 * math.log(base))
    low, high = dim(beta_fast), dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d // 2 - 1)   # "there are only d/2 pairs"
    if low == high:
        high += 0.001
    ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    scaled = theta * (1 - ramp) + theta / factor * ramp
    return scaled.float(), (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
''', mistake="clipped at the last pair", key="yarn-ramp"),
    Bug("yarn_returns_table_only", "scaling.yarn_inv_freq", '''
_right_yarn = yarn_inv_freq
def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    return _right_yarn(d, base, factor, original_max_len, beta_fast, beta_slow, truncate)[0]
''', mistake="must return a pair", key="not-a-pair"),

    # ------------------------------------------------------------ llama3_inv_freq
    Bug("llama3_bands_swapped", "scaling.llama3_inv_freq", '''
def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    if d % 2 or factor < 1 or original_max_len < 1:
        raise ValueError(f"bad d={d}, factor={factor} or original_max_len={original_max_len}")
    theta = unscaled_inv_freq(d, base)
    wavelen = 2 * math.pi / theta
    smooth = (original_max_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    middle = (1 - smooth) * theta / factor + smooth * theta
    out = torch.where(wavelen < original_max_len / high_freq_factor, theta / factor,
                      torch.where(wavelen > original_max_len / low_freq_factor, theta, middle))
    return out.float()
''', mistake="the bands swapped", key="llama3-bands"),
    Bug("llama3_smoothing_reversed", "scaling.llama3_inv_freq", '''
def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    if d % 2 or factor < 1 or original_max_len < 1:
        raise ValueError(f"bad d={d}, factor={factor} or original_max_len={original_max_len}")
    theta = unscaled_inv_freq(d, base)
    wavelen = 2 * math.pi / theta
    smooth = (original_max_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    middle = smooth * theta / factor + (1 - smooth) * theta
    out = torch.where(wavelen > original_max_len / low_freq_factor, theta / factor,
                      torch.where(wavelen < original_max_len / high_freq_factor, theta, middle))
    return out.float()
''', mistake="smoothing weight reversed", key="llama3-smoothing"),
    Bug("llama3_no_smooth_band", "scaling.llama3_inv_freq", '''
def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    if d % 2 or factor < 1 or original_max_len < 1:
        raise ValueError(f"bad d={d}, factor={factor} or original_max_len={original_max_len}")
    theta = unscaled_inv_freq(d, base)
    wavelen = 2 * math.pi / theta
    return torch.where(wavelen > original_max_len / low_freq_factor, theta / factor, theta).float()
''', mistake="no smooth band", key="llama3-bands"),
    Bug("llama3_thresholds_multiplied", "scaling.llama3_inv_freq", '''
def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    if d % 2 or factor < 1 or original_max_len < 1:
        raise ValueError(f"bad d={d}, factor={factor} or original_max_len={original_max_len}")
    theta = unscaled_inv_freq(d, base)
    wavelen = 2 * math.pi / theta
    short, long = original_max_len * low_freq_factor, original_max_len * high_freq_factor
    smooth = (original_max_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    middle = (1 - smooth) * theta / factor + smooth * theta
    out = torch.where(wavelen > long, theta / factor, torch.where(wavelen < short, theta, middle))
    return out.float()
''', mistake="thresholds original_max_len * factor", key="llama3-bands"),
    Bug("llama3_wrong_defaults", "scaling.llama3_inv_freq", '''
_right_llama3 = llama3_inv_freq
def llama3_inv_freq(d, base, factor=4.0, original_max_len=4096, low_freq_factor=1.0, high_freq_factor=4.0):
    return _right_llama3(d, base, factor, original_max_len, low_freq_factor, high_freq_factor)
''', mistake="your defaults are not Llama 3.1's", key="wrong-defaults"),
    # ------------------------------------------------------------ rope_from_config
    Bug("config_ignores_partial_rotary", "scaling.rope_from_config", '''
_right_rope_from_config = rope_from_config
def rope_from_config(config, head_dim=None, seq_len=None):
    config = {k: v for k, v in config.items() if k != "partial_rotary_factor"}
    for key in ("rope_parameters", "rope_scaling"):
        if config.get(key):
            config[key] = {k: v for k, v in config[key].items() if k != "partial_rotary_factor"}
    return _right_rope_from_config(config, head_dim, seq_len)
''', mistake="only int(head_dim * partial_rotary_factor) features rotate", key="config-kind-and-size"),
    Bug("config_legacy_type_not_read", "scaling.rope_from_config", '''
_right_rope_from_config = rope_from_config
def rope_from_config(config, head_dim=None, seq_len=None):
    config = dict(config)
    for key in ("rope_parameters", "rope_scaling"):
        if config.get(key):
            config[key] = {k: v for k, v in config[key].items() if k != "type"}
            config[key].setdefault("rope_type", "default")
    return _right_rope_from_config(config, head_dim, seq_len)
''', mistake="legacy key 'type'", key="config-kind-and-size"),
    Bug("config_mscale_ignored", "scaling.rope_from_config", '''
_right_rope_from_config = rope_from_config
def rope_from_config(config, head_dim=None, seq_len=None):
    config = dict(config)
    for key in ("rope_parameters", "rope_scaling"):
        if config.get(key):
            config[key] = {k: v for k, v in config[key].items() if k not in ("mscale", "mscale_all_dim")}
    return _right_rope_from_config(config, head_dim, seq_len)
''', mistake="mscale and mscale_all_dim ignored", key="config-mscale"),
    Bug("config_max_instead_of_original", "scaling.rope_from_config", '''
_right_rope_from_config = rope_from_config
def rope_from_config(config, head_dim=None, seq_len=None):
    config = {k: v for k, v in config.items() if k != "original_max_position_embeddings"}
    for key in ("rope_parameters", "rope_scaling"):
        if config.get(key):
            config[key] = dict(config[key], original_max_position_embeddings=config["max_position_embeddings"])
    return _right_rope_from_config(config, head_dim, seq_len)
''', mistake="max_position_embeddings used where the method needs original_max_position_embeddings",
        key="config-lengths"),
    Bug("config_longrope_always_long", "scaling.rope_from_config", '''
_right_rope_from_config = rope_from_config
def rope_from_config(config, head_dim=None, seq_len=None):
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type")) == "longrope":
        config = dict(config)
        key = "rope_parameters" if config.get("rope_parameters") else "rope_scaling"
        config[key] = dict(rope, short_factor=rope["long_factor"])
    return _right_rope_from_config(config, head_dim, seq_len)
''', mistake="long_factor used at a short length", key="config-lengths"),
    Bug("config_head_dim_argument_ignored", "scaling.rope_from_config", '''
_right_rope_from_config = rope_from_config
def rope_from_config(config, head_dim=None, seq_len=None):
    return _right_rope_from_config(config, None, seq_len)
''', mistake="although head_dim was passed", key="config-kind-and-size"),
]

# rope_from_config calls these four builders (as the notebook suggests), so their mistakes
# may cost points there too.
_CALLED_BY_ROPE_FROM_CONFIG = {"scaling.linear_scaled_inv_freq", "scaling.dynamic_ntk_inv_freq",
                               "scaling.yarn_inv_freq", "scaling.llama3_inv_freq"}
BUGS = [replace(b, cascades=(*b.cascades, "scaling.rope_from_config")) if b.exercise in _CALLED_BY_ROPE_FROM_CONFIG
        else b for b in BUGS]
