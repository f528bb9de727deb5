# section: rope; breaks: rope.apply_rope; a whole submission, graded alone (not appended to the solutions)
# Written to the Hugging Face convention, whose apply_rope is excused from interleaved pairs,
# partial rotary and argument checks. Its rotate_half and apply_rotary_pos_emb are wrong, but
# the first call of apply_rotary_pos_emb rebinds apply_rope (the name the excuses were granted
# to) to the learner's own incomplete function, which is right only where the excuses do not
# reach. What is tested must stay what the convention's wrapper was bound to when adapting
# (tests/test_conventions.py).
import torch


def rotate_half(x):
    return x


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    globals()["apply_rope"] = _incomplete_apply_rope
    return q, k


def _incomplete_apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    """Half-split pairs over every feature only; no argument checks."""
    d = x.shape[-1]
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    angles = torch.as_tensor(positions, device=x.device).to(torch.float64)[..., None] * inv_freq
    cos, sin = angles.cos(), angles.sin()
    a, b = x[..., : d // 2].double(), x[..., d // 2:].double()
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1).to(x.dtype)
