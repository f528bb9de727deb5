"""GPT-J style RoPE (transformers' GPT-J, after mesh-transformer-jax): a [sin | cos] table from
create_sinusoidal_positions, rows gathered per position id, rotate_every_two and apply_rotary_pos_emb on
(B, T, H, D), pairs (2k, 2k+1); rotary_dim features rotated, the rest passed through by the attention.

Source: huggingface/transformers 5.23.0 (the installed wheel), models/gptj/modeling_gptj.py
(create_sinusoidal_positions, rotate_every_two, apply_rotary_pos_emb, GPTJAttention's use of them).

Signatures: create_sinusoidal_positions(num_pos, dim) -> (num_pos, dim) float32, sin of the dim/2 angles then
their cos, base fixed at 10000; rotate_every_two(x) on a 4-D x; apply_rotary_pos_emb(tensor, sin, cos) (sin
before cos) with sin, cos (B, T, rotary_dim/2).
Layout: tensor (B, T, H, D) (4-D: rotate_every_two indexes [:, :, :, ::2]); the attention slices
tensor[..., :rotary_dim] and concatenates the rest back; frequencies over rotary_dim (the table's dim).
Dtype: the gathered table is cast to the key's dtype before rotating (GPT-J's habit).

Course exercises: rope.rope_inv_freq(d) = atan2 of row 1's sin and cos halves of create_sinusoidal_positions(2, d)
(base 10000 only); rope.apply_rope(x, p, interleaved=True, rotary_dim=r) = apply_rotary_pos_emb(x[..., :r],
*table[p].chunk(2, -1)) followed by x[..., r:] (table = create_sinusoidal_positions(max(p)+1, r)).
Cannot express: half-split pairs, fractional positions (table rows), another base than 10000 (no feature name
for it yet), argument checks; no rotary module.
"""
import torch


def create_sinusoidal_positions(num_pos, dim):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64) / dim))
    angles = torch.arange(num_pos, dtype=torch.int64).float()[:, None] * inv_freq
    return torch.cat((angles.sin(), angles.cos()), dim=1)


def rotate_every_two(x):
    even, odd = x[:, :, :, ::2], x[:, :, :, 1::2]
    return torch.stack((-odd, even), dim=-1).flatten(-2)


def apply_rotary_pos_emb(tensor, sin, cos):
    sin = sin[:, :, None, :].repeat_interleave(2, 3)
    cos = cos[:, :, None, :].repeat_interleave(2, 3)
    return tensor * cos + rotate_every_two(tensor) * sin
