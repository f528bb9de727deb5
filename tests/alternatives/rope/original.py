"""A correct RoPE written another way: complex numbers (Meta's style), einsum, no shared helper."""
import torch
from torch import nn


def rope_inv_freq(d, base=10000.0):
    if d <= 0 or d % 2 == 1:
        raise ValueError("d has to be even and positive")
    return torch.exp(-torch.log(torch.tensor(float(base), dtype=torch.float64)) * torch.arange(0, d, 2) / d).float()


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = rotary_dim if rotary_dim is not None else d
    if r < 2 or r > d or r % 2:
        raise ValueError(f"invalid rotary_dim {r}")
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    pos = torch.as_tensor(positions, device=x.device).to(wide)
    theta = torch.einsum("...t,f->...tf", pos, rope_inv_freq(r, base).to(x.device, wide))
    head = x[..., :r].to(wide)
    if interleaved:
        pairs = head.reshape(*head.shape[:-1], r // 2, 2)
    else:
        pairs = torch.stack((head[..., : r // 2], head[..., r // 2:]), dim=-1)
    z = torch.view_as_complex(pairs.contiguous()) * torch.polar(torch.ones_like(theta), theta)
    turned = torch.view_as_real(z)
    turned = turned.flatten(-2) if interleaved else torch.cat((turned[..., 0], turned[..., 1]), dim=-1)
    return torch.cat((turned.to(x.dtype), x[..., r:]), dim=-1)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    eye = torch.eye(d, dtype=torch.float64)
    return apply_rope(eye, torch.full((d,), float(position), dtype=torch.float64), base, interleaved).T.float()


def interleaved_to_half_split(d):
    if d % 2:
        raise ValueError(f"odd d={d}")
    return torch.arange(d).view(d // 2, 2).T.reshape(-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        self.d, self.base, self.interleaved, self.max_len = d, base, interleaved, max_len

    def forward(self, q, k, positions):
        if q.shape[-1] != self.d or k.shape[-1] != self.d:
            raise ValueError(f"q and k need last dimension {self.d}")
        return (apply_rope(q, positions, self.base, self.interleaved),
                apply_rope(k, positions, self.base, self.interleaved))
