"""Adapter for examples/model_rope.py: defines the course's names from the model's own functions.

It runs in the same namespace as the graded code, after it (and again whenever the grader has
to restart that code's process). NOT_APPLICABLE, read by the grader from this file, names the
features and exercises the model code has no counterpart of (see README, "Checking RoPE/ALiBi
code from elsewhere").
"""
import torch

NOT_APPLICABLE = {
    "argument_checks": "the model code does not validate its arguments",
    "rope.rotate_complex": "the model code rotates whole vectors by position only",
    "rope.rope_matrix": "the model code has no rotation matrix",
    "rope.interleaved_to_half_split": "the model code has no pairing permutation",
    "rope.RotaryEmbedding": "the model code has no rotary module",
    "alibi.alibi_bias": "the model code builds no bias table",
    "alibi.alibi_attention": "the model code's attention is not a separate function",
    "rope.cached_rope_attention": "the model code's attention is not a separate function",
    "alibi.cached_alibi_attention": "the model code's attention is not a separate function",
}


def rope_inv_freq(d, base=10000.0):
    return rope_frequencies(d, theta=base)


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    fraction = 1.0 if rotary_dim is None else rotary_dim / x.shape[-1]
    return rotate(x, positions, theta=base, interleave=interleaved, rotary_fraction=fraction)


def alibi_slopes(n_heads):
    return torch.tensor(head_slopes(n_heads), dtype=torch.float32)
