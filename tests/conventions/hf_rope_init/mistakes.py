"""Wrong transformers rope-init style code: each is appended to correct.py and graded through the recogniser
(each also rebinds its ROPE_INIT_FUNCTIONS entry, as a file that defines the function once would)."""
from tests.bank import Bug

BUGS = [
    Bug("linear_multiplies", "scaling.linear_scaled_inv_freq", '''
def _compute_linear_scaling_rope_parameters(config, device=None, seq_len=None, layer_type=None):
    base, dim = _rope_size(config)
    return _plain_inv_freq(base, dim, device) * config.rope_parameters["factor"], 1.0
ROPE_INIT_FUNCTIONS["linear"] = _compute_linear_scaling_rope_parameters
''', mistake="position interpolation", key="pi-direction"),
    Bug("dynamic_length_not_floored", "scaling.dynamic_ntk_inv_freq", '''
def _compute_dynamic_ntk_parameters(config, device=None, seq_len=None, layer_type=None):
    base, dim = _rope_size(config)
    factor, max_len = config.rope_parameters["factor"], config.max_position_embeddings
    seq_len = max_len if seq_len is None else seq_len
    base = base * (factor * seq_len / max_len - (factor - 1)) ** (dim / (dim - 2))
    return _plain_inv_freq(base, dim, device), 1.0
ROPE_INIT_FUNCTIONS["dynamic"] = _compute_dynamic_ntk_parameters
''', mistake="dynamic NTK", key="dynamic-ntk"),
    Bug("yarn_ramp_reversed", "scaling.yarn_inv_freq", '''
def _compute_yarn_parameters(config, device=None, seq_len=None, layer_type=None):
    rope = config.rope_parameters
    base, dim = _rope_size(config)
    original, factor = rope["original_max_position_embeddings"], rope["factor"]
    def correction_dim(rotations):
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))
    low = max(math.floor(correction_dim(rope.get("beta_fast") or 32)), 0)
    high = min(math.ceil(correction_dim(rope.get("beta_slow") or 1)), dim - 1)
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / max(high - low, 0.001)).clamp(0, 1)
    plain = _plain_inv_freq(base, dim, device)
    return plain / factor * (1 - ramp) + plain * ramp, 0.1 * math.log(factor) + 1.0
ROPE_INIT_FUNCTIONS["yarn"] = _compute_yarn_parameters
''', mistake="YaRN ramp", key="yarn-ramp"),
    Bug("yarn_attention_factor_forgotten", "scaling.yarn_inv_freq", '''
_right_yarn = _compute_yarn_parameters
def _compute_yarn_parameters(config, device=None, seq_len=None, layer_type=None):
    return _right_yarn(config, device, seq_len, layer_type)[0], 1.0
ROPE_INIT_FUNCTIONS["yarn"] = _compute_yarn_parameters
''', mistake="YaRN attention factor", key="yarn-attention-factor"),
    Bug("llama3_thresholds_swapped", "scaling.llama3_inv_freq", '''
def _compute_llama3_parameters(config, device=None, seq_len=None, layer_type=None):
    rope = config.rope_parameters
    base, dim = _rope_size(config)
    inv_freq = _plain_inv_freq(base, dim, device)
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    divided = torch.where(wavelen > old / high, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    medium = (wavelen >= old / low) & (wavelen <= old / high)
    return torch.where(medium, (1 - smooth) * divided / factor + smooth * divided, divided), 1.0
ROPE_INIT_FUNCTIONS["llama3"] = _compute_llama3_parameters
''', mistake="Llama 3.1 scaling"),  # no candidate of the suite matches: named by its section only
]
