"""transformers' RoPE initialisation functions: each ``f(config, device=None, seq_len=None, ...)``
returns ``(inv_freq, attention_factor)`` for one rope type. The config is a plain namespace holding
both generations' fields: ``rope_parameters`` (with ``rope_theta``; transformers 5, which also calls
``config.standardize_rope_params()``) and ``rope_theta`` with ``rope_scaling`` (4.x)."""
import types

FUNCTIONS = {"linear": "_compute_linear_scaling_rope_parameters", "dynamic": "_compute_dynamic_ntk_parameters",
             "yarn": "_compute_yarn_parameters", "llama3": "_compute_llama3_parameters"}


def config(rope_type, d, base, max_position_embeddings, **parameters):
    """A model config of head size d (one head, no partial rotary), `parameters` in its rope dict."""
    rope = {"rope_type": rope_type, "rope_theta": float(base), **parameters}
    return types.SimpleNamespace(
        hidden_size=d, num_attention_heads=1, head_dim=d, partial_rotary_factor=1.0,
        max_position_embeddings=max_position_embeddings, rope_parameters=rope, rope_scaling=rope,
        rope_theta=float(base), standardize_rope_params=lambda: None)


def adapt(found: dict) -> dict:
    linear, dynamic, yarn, llama3 = (found.get(name) for name in FUNCTIONS.values())

    def linear_scaled_inv_freq(d, base, factor):
        return linear(config("linear", d, base, 2048, factor=factor))[0]

    def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
        return dynamic(config("dynamic", d, base, original_max_len, factor=factor), seq_len=seq_len)[0]

    def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
        """max_position_embeddings = factor * original_max_len: transformers 4.x takes the factor as
        their ratio when the rope dict names the original length"""
        return yarn(config("yarn", d, base, factor * original_max_len, factor=factor, beta_fast=beta_fast,
                           beta_slow=beta_slow, truncate=truncate, original_max_position_embeddings=original_max_len))

    def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
        return llama3(config("llama3", d, base, factor * original_max_len, factor=factor,
                             low_freq_factor=low_freq_factor, high_freq_factor=high_freq_factor,
                             original_max_position_embeddings=original_max_len))[0]

    made = {"linear_scaled_inv_freq": (linear, linear_scaled_inv_freq),
            "dynamic_ntk_inv_freq": (dynamic, dynamic_ntk_inv_freq),
            "yarn_inv_freq": (yarn, yarn_inv_freq), "llama3_inv_freq": (llama3, llama3_inv_freq)}
    return {name: function for name, (theirs, function) in made.items() if theirs is not None}
