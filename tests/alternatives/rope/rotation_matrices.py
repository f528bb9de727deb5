"""RoPE with explicit rotation matrices: every position gets its (d/2, 2, 2) stack of 2x2
rotations, applied to the feature pairs by einsum; rope_matrix assembles the
block-diagonal matrix in interleaved order (torch.block_diag) and conjugates it with a
permutation matrix for the half-split order; the permutation is an argsort of pair keys."""
import math

import torch


def rope_inv_freq(d, base=10000.0):
    if d % 2 or d <= 0:
        raise ValueError(f"d must be even and positive; d={d}")
    k = torch.arange(d // 2, dtype=torch.float64)
    return torch.exp(-(2.0 * k / d) * math.log(base)).to(torch.float32)


def _rotations(angles):
    c, s = angles.cos(), angles.sin()
    return torch.stack((torch.stack((c, -s), dim=-1), torch.stack((s, c), dim=-1)), dim=-2)   # (..., 2, 2)


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else int(rotary_dim)
    if r % 2 == 1 or r < 2 or r > d:
        raise ValueError(f"rotary_dim={r} is not an even number between 2 and d={d}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    positions = torch.as_tensor(positions, device=x.device).to(work)
    R = _rotations(positions[..., None] * rope_inv_freq(r, base).to(device=x.device, dtype=work))
    head = x[..., :r].to(work)
    if interleaved:
        pairs = head.unflatten(-1, (r // 2, 2))
    else:
        pairs = torch.stack((head[..., : r // 2], head[..., r // 2:]), dim=-1)
    turned = torch.einsum("...kij,...kj->...ki", R, pairs)
    if interleaved:
        turned = turned.flatten(-2)
    else:
        turned = torch.cat((turned[..., 0], turned[..., 1]), dim=-1)
    return torch.cat((turned.to(x.dtype), x[..., r:]), dim=-1)


def interleaved_to_half_split(d):
    if d % 2 or d <= 0:
        raise ValueError(f"d must be even and positive; d={d}")
    j = torch.arange(d)
    return torch.argsort((j % 2) * d + j // 2)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    angles = float(position) * rope_inv_freq(d, base).double()
    block = torch.block_diag(*_rotations(angles).unbind(0))            # pairs (2k, 2k+1)
    if interleaved:
        return block.float()
    # Q maps interleaved feature 2k -> k and 2k+1 -> k + d/2
    src = torch.arange(d)
    dest = torch.where(src % 2 == 0, src // 2, src // 2 + d // 2)
    Q = torch.zeros(d, d, dtype=torch.float64)
    Q[dest, src] = 1.0
    return (Q @ block @ Q.T).float()
