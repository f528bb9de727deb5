"""flash-attn's pure-PyTorch reference: apply_rotary_emb_torch(x, cos, sin, interleaved=False) with cos and sin
given by the caller, one column per pair.

Source: Dao-AILab/flash-attention at 0251105a2fb19d2957484b7f023cd8c115286ced, flash_attn/layers/rotary.py
(rotate_half, apply_rotary_emb_torch; written here without einops).

Signatures: rotate_half(x, interleaved=False); apply_rotary_emb_torch(x, cos, sin, interleaved=False).
Layout: x is (B, T, H, D); cos and sin are (T, rotary_dim/2) or (B, T, rotary_dim/2), expanded over the head
axis; rotary_dim = 2 * cos.shape[-1] <= D, the first rotary_dim features are rotated, the rest pass through.
Pairing: half-split (k, k + rotary_dim/2) by default, (2k, 2k+1) with interleaved=True.
Dtype: no cast of its own: it computes in the promoted dtype of x and cos (flash-attn's RotaryEmbedding casts its
float32 tables to x's dtype first). A caller giving float32 tables gets float32 back and casts to x's dtype.

Course exercise: rope.apply_rope(x, p, base, interleaved, rotary_dim) =
apply_rotary_emb_torch(x as (1, N, 1, D), cos(p_n * inv_freq), sin(p_n * inv_freq), interleaved).to(x.dtype),
inv_freq = base^(-2k/rotary_dim) made by the caller. Nothing here computes frequencies, so no
rope.rope_inv_freq; no argument checks (an assert on the width).
"""
import torch


def rotate_half(x, interleaved=False):
    if not interleaved:
        first, second = x.chunk(2, dim=-1)
        return torch.cat((-second, first), dim=-1)
    first, second = x[..., ::2], x[..., 1::2]
    return torch.stack((-second, first), dim=-1).flatten(-2)


def apply_rotary_emb_torch(x, cos, sin, interleaved=False):
    ro_dim = cos.shape[-1] * 2
    assert ro_dim <= x.shape[-1]
    if interleaved:
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    else:
        cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    rotated = x[..., :ro_dim] * cos + rotate_half(x[..., :ro_dim], interleaved) * sin
    return torch.cat((rotated, x[..., ro_dim:]), dim=-1)
