"""Model code written to its own signatures (not the course's): RoPE on a fraction of the head
features, and ALiBi slopes as a list. Grade it through an adapter:

    python -m course.grade examples/model_rope.py --adapter examples/model_rope_adapter.py
"""
import math

import torch


def rope_frequencies(head_dim, theta=10000.0):
    return 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim).float()


def rotate(x, positions, theta=10000.0, interleave=False, rotary_fraction=1.0):
    """Rotate the first rotary_fraction of x's features (..., T, D) by their positions."""
    width = int(x.shape[-1] * rotary_fraction)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    angles = torch.as_tensor(positions, device=x.device).to(compute)[..., None] * rope_frequencies(width, theta).to(
        x.device, compute)
    cos, sin = angles.cos(), angles.sin()
    head = x[..., :width].to(compute)
    a, b = (head[..., 0::2], head[..., 1::2]) if interleave else head.chunk(2, dim=-1)
    ra, rb = a * cos - b * sin, a * sin + b * cos
    turned = torch.stack((ra, rb), dim=-1).flatten(-2) if interleave else torch.cat((ra, rb), dim=-1)
    return torch.cat((turned.to(x.dtype), x[..., width:]), dim=-1)


def head_slopes(n_heads):
    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = [2 ** (-8 * (i + 1) / closest) for i in range(closest)]
    return slopes + [2 ** (-8 * (i + 1) / (2 * closest)) for i in range(0, 2 * (n_heads - closest), 2)]
