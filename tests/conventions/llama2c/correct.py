"""llama2.c style RoPE: precompute_freqs_cis returns real tables (freqs_cos, freqs_sin), and
apply_rotary_emb(xq, xk, freqs_cos, freqs_sin) rotates (B, T, H, D) queries and keys, pairs (2k, 2k+1).

Source: karpathy/llama2.c at 350e04fe35433e6d2941dce5a1f53308f87058eb, model.py.

Signatures: precompute_freqs_cis(dim, end, theta=10000.0) -> (freqs_cos, freqs_sin), each (end, dim/2) float32;
reshape_for_broadcast(freqs_cis, x); apply_rotary_emb(xq, xk, freqs_cos, freqs_sin) -> (xq_out, xk_out).
Layout: xq, xk (B, T, H, D); the tables hold exactly T rows (the model slices freqs_cos[:T] or picks rows),
shared by the batch. Computes in float32, returns each input's dtype.
Same names as Meta's llama (meta_llama) and llama-models but another signature: two real tables, not a complex one.

Course exercises: rope.rope_inv_freq = atan2(freqs_sin[1], freqs_cos[1]) of precompute_freqs_cis(d, 2, base);
rope.apply_rope (interleaved=True) = apply_rotary_emb(x as (1, N, 1, D), same, cos[p], sin[p])[0].
Cannot express: half-split pairs, partial rotary, fractional positions (table rows), argument checks;
no rotary module (rope.RotaryEmbedding).
"""
import torch


def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(end, device=freqs.device).float(), freqs)
    return angles.cos(), angles.sin()


def reshape_for_broadcast(freqs_cis, x):
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    return freqs_cis.view([n if i in (1, x.ndim - 1) else 1 for i, n in enumerate(x.shape)])


def apply_rotary_emb(xq, xk, freqs_cos, freqs_sin):
    q_re, q_im = xq.float().reshape(xq.shape[:-1] + (-1, 2)).unbind(-1)
    k_re, k_im = xk.float().reshape(xk.shape[:-1] + (-1, 2)).unbind(-1)
    cos, sin = reshape_for_broadcast(freqs_cos, q_re), reshape_for_broadcast(freqs_sin, q_re)
    xq_out = torch.stack((q_re * cos - q_im * sin, q_re * sin + q_im * cos), dim=-1).flatten(3)
    xk_out = torch.stack((k_re * cos - k_im * sin, k_re * sin + k_im * cos), dim=-1).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)
