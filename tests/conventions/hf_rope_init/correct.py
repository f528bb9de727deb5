"""transformers' RoPE initialisation functions (transformers 5.x): each reads a model config and returns
(inv_freq, attention_factor) for one rope_type; ROPE_INIT_FUNCTIONS maps rope_type to its function.

Source: huggingface/transformers 5.23.0 (the installed wheel), modeling_rope_utils.py:
_compute_linear_scaling_rope_parameters, _compute_dynamic_ntk_parameters, _compute_yarn_parameters,
_compute_llama3_parameters, ROPE_INIT_FUNCTIONS.

Signatures: each f(config, device=None, seq_len=None, layer_type=None) -> (inv_freq float32 (dim/2,), float).
The config is read as attributes: hidden_size, num_attention_heads, head_dim (optional),
max_position_embeddings, and the dict rope_parameters with rope_theta, partial_rotary_factor (optional),
factor, and per type: original_max_position_embeddings, beta_fast, beta_slow, truncate, attention_factor,
mscale, mscale_all_dim (yarn); low_freq_factor, high_freq_factor, original_max_position_embeddings (llama3).
dim = int(head_dim * partial_rotary_factor). Per-layer configs (layer_type) are not written here.

Course exercises (cfg = a config with head_dim d and rope_parameters as named):
scaling.linear_scaled_inv_freq(d, base, f) = linear(cfg(rope_theta=base, factor=f))[0];
scaling.dynamic_ntk_inv_freq(d, base, f, n, L) = dynamic(cfg(max_position_embeddings=L, factor=f), seq_len=n)[0];
scaling.yarn_inv_freq(d, base, f, L, bf, bs, truncate) = yarn(cfg(factor=f, original_max_position_embeddings=L,
beta_fast=bf, beta_slow=bs, truncate=truncate));
scaling.llama3_inv_freq(d, base, f, L, lo, hi) = llama3(cfg(...))[0].
Cannot express: scaling.ntk_scaled_base (no static NTK type), argument checks (no ValueError for factor < 1 or
d <= 2), beta_fast or beta_slow of 0 (read with `or` defaults), and rope_from_config's "default" and
"longrope" types (not written here).
"""
import math

import torch


def _rope_size(config):
    rope = config.rope_parameters
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return rope["rope_theta"], int(head_dim * rope.get("partial_rotary_factor", 1.0))


def _plain_inv_freq(base, dim, device=None):
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim
    return 1.0 / (base ** exponents)


def _compute_linear_scaling_rope_parameters(config, device=None, seq_len=None, layer_type=None):
    base, dim = _rope_size(config)
    return _plain_inv_freq(base, dim, device) / config.rope_parameters["factor"], 1.0


def _compute_dynamic_ntk_parameters(config, device=None, seq_len=None, layer_type=None):
    base, dim = _rope_size(config)
    factor = config.rope_parameters["factor"]
    max_len = config.max_position_embeddings
    seq_len = max_len if seq_len is None else max(seq_len, max_len)
    base = base * (factor * seq_len / max_len - (factor - 1)) ** (dim / (dim - 2))
    return _plain_inv_freq(base, dim, device), 1.0


def _compute_yarn_parameters(config, device=None, seq_len=None, layer_type=None):
    rope = config.rope_parameters
    base, dim = _rope_size(config)
    original = rope["original_max_position_embeddings"]
    factor = rope["factor"]
    if factor is None:
        factor = config.max_position_embeddings / original

    def get_mscale(scale, mscale=1):
        return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

    attention_factor = rope.get("attention_factor")
    if attention_factor is None:
        if rope.get("mscale") and rope.get("mscale_all_dim"):
            attention_factor = float(get_mscale(factor, rope["mscale"]) / get_mscale(factor, rope["mscale_all_dim"]))
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rope.get("beta_fast") or 32
    beta_slow = rope.get("beta_slow") or 1

    def correction_dim(rotations):
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if rope.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1).to(device)
    extrapolation = _plain_inv_freq(base, dim, device)
    keep = 1 - ramp
    return extrapolation / factor * (1 - keep) + extrapolation * keep, attention_factor


def _compute_llama3_parameters(config, device=None, seq_len=None, layer_type=None):
    rope = config.rope_parameters
    base, dim = _rope_size(config)
    inv_freq = _plain_inv_freq(base, dim, device)
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_context_len = rope["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    divided = torch.where(wavelen > old_context_len / low, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * divided / factor + smooth * divided
    medium = (wavelen >= old_context_len / high) & (wavelen <= old_context_len / low)
    return torch.where(medium, smoothed, divided), 1.0


ROPE_INIT_FUNCTIONS = {
    "linear": _compute_linear_scaling_rope_parameters,
    "dynamic": _compute_dynamic_ntk_parameters,
    "yarn": _compute_yarn_parameters,
    "llama3": _compute_llama3_parameters,
}
