"""An example learner submission for section 6 (RoPE), with mistakes learners often make.

Grade it with `python -m course.grade examples/rope_attempt.py` to see the feedback.
"""
import torch


def rope_inv_freq(d, base=10000.0):
    return 1.0 / base ** (torch.arange(0, d, 2).float() / d)  # forgets to reject odd d


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = rotary_dim or d
    angles = positions[..., None].to(x.dtype) * rope_inv_freq(r, base)  # half-precision angles
    cos, sin = angles.cos(), angles.sin()
    a, b = x[..., 0:r:2], x[..., 1:r:2]  # always pairs (2k, 2k+1)
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    return torch.cat((out.to(x.dtype), x[..., r:]), dim=-1)


def interleaved_to_half_split(d):
    return torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2)))
