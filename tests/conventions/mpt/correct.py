"""MosaicML (MPT, llm-foundry) style ALiBi: gen_slopes(n_heads, alibi_bias_max) and build_alibi_bias(n_heads,
seq_len, full) making a (1, H, 1, T) or (1, H, T, T) bias to add to attention scores.

Source: mosaicml/llm-foundry at 8c8dd48f72168c5d51e2f7b151595892a8fba43d, llmfoundry/models/layers/attention.py
(gen_slopes, build_alibi_bias, build_attn_bias).

Signatures: gen_slopes(n_heads, alibi_bias_max=8, device=None, return_1d=False) -> (H,) or (1, H, 1, 1) float32;
build_alibi_bias(n_heads, seq_len, full=False, alibi_bias_max=8, device=None, dtype=None);
build_attn_bias(attn_impl, attn_bias, n_heads, seq_len, causal=False, alibi=False, alibi_bias_max=8).
Slopes: 2^(-alibi_bias_max * m / n) for the next power of two n, then (not a power of two) the odd-indexed slopes
followed by the even-indexed ones, cut to n_heads: the ALiBi paper's rule written another way.
Bias: not full (causal use): slope * (j - (T-1)) per key j, one row broadcast over queries (it differs from
-slope * (i - j) by a per-query constant, which softmax ignores); full: -slope * |i - j| over positions 0..T-1.

Course exercises: alibi.alibi_slopes(n) = gen_slopes(n, return_1d=True);
alibi.alibi_bias(slopes, arange(T), arange(T)) = build_alibi_bias(H, T, full=True)[0] when slopes are
gen_slopes(H) (it takes no slopes and no positions);
alibi.alibi_attention(q, k, v, causal) = softmax(q k^T / sqrt(d) + build_alibi_bias(H, T_k, full=not causal)
[rows of the last T_q queries], causal mask) v.
Cannot express: alibi_bias for given slopes or positions other than 0..T-1, argument checks.
"""
import math

import torch


def gen_slopes(n_heads, alibi_bias_max=8, device=None, return_1d=False):
    padded = 2 ** math.ceil(math.log2(n_heads))
    m = torch.arange(1, padded + 1, dtype=torch.float32, device=device) * (alibi_bias_max / padded)
    slopes = 1.0 / torch.pow(2, m)
    if padded != n_heads:
        slopes = torch.cat((slopes[1::2], slopes[::2]))[:n_heads]
    return slopes if return_1d else slopes.view(1, n_heads, 1, 1)


def build_alibi_bias(n_heads, seq_len, full=False, alibi_bias_max=8, device=None, dtype=None):
    keys = torch.arange(1 - seq_len, 1, dtype=torch.int32, device=device).view(1, 1, 1, seq_len)
    if full:
        queries = torch.arange(1 - seq_len, 1, dtype=torch.int32, device=device).view(1, 1, seq_len, 1)
        keys = -(keys - queries).abs()
    return (keys * gen_slopes(n_heads, alibi_bias_max, device=device)).to(dtype=dtype)


def build_attn_bias(attn_impl, attn_bias, n_heads, seq_len, causal=False, alibi=False, alibi_bias_max=8):
    if attn_impl == 'flash':
        return None
    if attn_impl != 'torch':
        raise ValueError(f'{attn_impl=} is an invalid setting.')
    if alibi:
        attn_bias = attn_bias.add(build_alibi_bias(n_heads, seq_len, full=not causal, alibi_bias_max=alibi_bias_max,
                                                   device=attn_bias.device, dtype=attn_bias.dtype))
    return attn_bias
