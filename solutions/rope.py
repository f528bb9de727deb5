"""Section 6, RoPE: reference solutions.

This module is the single source of the solution cells in source_notebooks/06_rope:
`python -m course.build` copies each definition into its tagged cell.
"""
import math

import torch
from torch import nn


def rope_inv_freq(d, base=10000.0):
    """Inverse frequencies base^(-2k/d), k = 0 .. d/2 - 1, as a float32 tensor of shape (d/2,)."""
    ### BEGIN SOLUTION
    if d < 2 or d % 2:
        raise ValueError(f"d must be a positive even number, got d={d}")
    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d
    return (float(base) ** -exponents).to(torch.float32)
    ### END SOLUTION


def rotate_complex(x, angles):
    """Read each half-split pair (x_j, x_{j + d/2}) as x_j + i x_{j + d/2} and multiply it by e^{i angles[..., j]}.

    angles broadcasts against (..., d/2); the result is real, of x's shape and dtype.
    """
    ### BEGIN SOLUTION
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"x must have an even last dimension (pairs of features), got {d}")
    angles = torch.as_tensor(angles, device=x.device)
    pairs = x.shape[:-1] + (d // 2,)
    try:
        fits = torch.broadcast_shapes(angles.shape, pairs) == pairs
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"angles of shape {tuple(angles.shape)} do not broadcast to {tuple(pairs)}, one per pair of x")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    z = torch.complex(x[..., : d // 2].to(work), x[..., d // 2:].to(work))
    angles = angles.to(work)
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)
    ### END SOLUTION


def rotate_pairs(x, cos, sin, interleaved=False):
    """Rotate feature pairs of x by angles given through cos and sin, each (..., d/2).

    Half-split pairs are (k, k + d/2); interleaved pairs are (2k, 2k + 1).
    Each pair (a, b) becomes (a cos - b sin, a sin + b cos).
    """
    ### BEGIN SOLUTION
    half = x.shape[-1] // 2
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., :half], x[..., half:]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    if interleaved:
        return torch.stack((ra, rb), dim=-1).flatten(-2)
    return torch.cat((ra, rb), dim=-1)
    ### END SOLUTION


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    """Rotate the first `rotary_dim` features of x (..., T, d) by their positions.

    Pair k turns by position * base^(-2k/rotary_dim); features past rotary_dim pass through.
    Angles are computed in float32 (float64 for float64 input); the result has x's dtype.
    """
    ### BEGIN SOLUTION
    d = x.shape[-1]
    rotary_dim = d if rotary_dim is None else rotary_dim
    if rotary_dim % 2 or not 2 <= rotary_dim <= d:
        raise ValueError(f"rotary_dim must be even with 2 <= rotary_dim <= d={d}, got rotary_dim={rotary_dim}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    positions = torch.as_tensor(positions, device=x.device)
    try:
        torch.broadcast_shapes(positions.shape + (1,), x.shape)
    except RuntimeError:
        raise ValueError(f"positions of shape {tuple(positions.shape)} do not fit x of shape {tuple(x.shape)}") from None
    inv_freq = rope_inv_freq(rotary_dim, base).to(device=x.device, dtype=work)
    angles = positions.to(work)[..., None] * inv_freq
    rotated = rotate_pairs(x[..., :rotary_dim].to(work), angles.cos(), angles.sin(), interleaved)
    return torch.cat((rotated.to(x.dtype), x[..., rotary_dim:]), dim=-1)
    ### END SOLUTION


def rope_matrix(position, d, base=10000.0, interleaved=False):
    """The orthogonal (d, d) matrix R with apply_rope(x, position) == x @ R.T."""
    ### BEGIN SOLUTION
    inv_freq = rope_inv_freq(d, base).double()
    R = torch.zeros(d, d, dtype=torch.float64)
    for k, freq in enumerate(inv_freq.tolist()):
        i, j = (2 * k, 2 * k + 1) if interleaved else (k, k + d // 2)
        c, s = math.cos(float(position) * freq), math.sin(float(position) * freq)
        R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R.to(torch.float32)
    ### END SOLUTION


def interleaved_to_half_split(d):
    """The permutation perm with apply_rope(x, p, interleaved=True)[..., perm] == apply_rope(x[..., perm], p)."""
    ### BEGIN SOLUTION
    if d < 2 or d % 2:
        raise ValueError(f"d must be a positive even number, got d={d}")
    return torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2)))
    ### END SOLUTION


class RotaryEmbedding(nn.Module):
    """Rotary embedding with a cos/sin cache that grows on demand.

    forward(q, k, positions) returns (apply_rope(q, positions), apply_rope(k, positions))
    with the module's base and pairing convention.
    """

    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        ### BEGIN SOLUTION
        if d < 2 or d % 2:
            raise ValueError(f"d must be a positive even number, got d={d}")
        self.d, self.base, self.interleaved = d, base, interleaved
        self.register_buffer("inv_freq", rope_inv_freq(d, base), persistent=False)
        self.extend_cache(max_len)
        ### END SOLUTION

    def extend_cache(self, length):
        """Make the buffers cos_cached and sin_cached, (length, d/2), cover positions 0 .. length-1."""
        ### BEGIN SOLUTION
        # The angles p * theta_k are formed in float64 (6.11: this product is where precision
        # is lost at long positions); the finished cos and sin are stored in float32.
        device = self.inv_freq.device
        inv_freq64 = float(self.base) ** -(torch.arange(0, self.d, 2, dtype=torch.float64, device=device) / self.d)
        angles = torch.arange(length, dtype=torch.float64, device=device)[:, None] * inv_freq64
        self.register_buffer("cos_cached", angles.cos().float(), persistent=False)
        self.register_buffer("sin_cached", angles.sin().float(), persistent=False)
        ### END SOLUTION

    def forward(self, q, k, positions):
        ### BEGIN SOLUTION
        positions = torch.as_tensor(positions, device=q.device)
        for name, t in (("q", q), ("k", k)):
            if t.shape[-1] != self.d:
                raise ValueError(f"{name} has last dimension {t.shape[-1]}, expected d={self.d}")
            try:
                torch.broadcast_shapes(positions.shape + (1,), t.shape)
            except RuntimeError:
                raise ValueError(f"positions of shape {tuple(positions.shape)} do not fit {name} of shape {tuple(t.shape)}") from None
        if positions.is_floating_point() or (positions.numel() and int(positions.min()) < 0):
            inv_freq64 = float(self.base) ** -(torch.arange(0, self.d, 2, dtype=torch.float64, device=q.device) / self.d)
            angles = positions.double()[..., None] * inv_freq64
            cos, sin = angles.cos().float(), angles.sin().float()
        else:
            if positions.numel() and int(positions.max()) >= self.cos_cached.shape[0]:
                self.extend_cache(max(int(positions.max()) + 1, 2 * self.cos_cached.shape[0]))
            cos, sin = self.cos_cached[positions], self.sin_cached[positions]

        def rotate(x):
            work = torch.float64 if x.dtype == torch.float64 else torch.float32
            return rotate_pairs(x.to(work), cos.to(work), sin.to(work), self.interleaved).to(x.dtype)

        return rotate(q), rotate(k)
        ### END SOLUTION


def cached_rope_attention(q, k, v, attention_mask, cache=None, base=10000.0):
    """One step of causal RoPE attention with a KV cache, on a (possibly left-padded) batch.

    q, k (B, H, T_new, d) are the new tokens' queries and keys, not yet rotated; v (B, H, T_new, d_v).
    attention_mask (B, T_past + T_new), 0/1 or bool, covers the cached tokens and then the new ones.
    A real token's position is the number of real tokens before it in its row.
    cache is None (nothing before) or the (keys, values) a previous call returned, keys already
    rotated. Returns (out (B, H, T_new, d_v) in q's dtype, (keys, values) with T_past + T_new rows).
    """
    ### BEGIN SOLUTION
    d = q.shape[-1]
    if d % 2:
        raise ValueError(f"d must be even (RoPE rotates pairs of features), got d={d}")
    past_k, past_v = cache if cache is not None else (k[..., :0, :], v[..., :0, :])
    t_past, t_new = past_k.shape[-2], q.shape[-2]
    mask = torch.as_tensor(attention_mask, device=q.device).bool()
    if mask.dim() != 2 or mask.shape[-1] != t_past + t_new:
        raise ValueError(f"attention_mask of shape {tuple(mask.shape)} must be (B, T_past + T_new) = "
                         f"({q.shape[0]}, {t_past} + {t_new})")
    positions = (mask.long().cumsum(-1) - 1).masked_fill(~mask, 0)  # position_ids_from_mask (notebook 02)
    new_positions = positions[:, None, t_past:]                     # next_position_ids: (B, 1, T_new)
    keys = torch.cat((past_k, apply_rope(k, new_positions, base)), dim=-2)
    values = torch.cat((past_v, v), dim=-2)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = apply_rope(q, new_positions, base).to(work) @ keys.to(work).transpose(-1, -2) / math.sqrt(d)
    causal = torch.arange(t_past + t_new, device=q.device) <= t_past + torch.arange(t_new, device=q.device)[:, None]
    allowed = causal & mask[:, None, None, :]
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)
    return (weights @ values.to(work)).to(q.dtype), (keys, values)
    ### END SOLUTION
