"""RoPE in Meta's Llama style: `precompute_freqs_cis` (complex unit numbers from torch.polar
over an outer product), `apply_rotary_emb` multiplying view_as_complex of interleaved
pairs; the half-split convention is reached by permuting features into interleaved order
and back (rotate_complex too). RotaryEmbedding keeps a complex `freqs_cis` buffer that grows by doubling."""
import torch
from torch import nn


def rope_inv_freq(d, base=10000.0):
    if d < 2 or d % 2:
        raise ValueError(f"dim d={d} must be even")
    return 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64)[: d // 2] / d)).float()


def precompute_freqs_cis(dim, end, theta=10000.0, device=None):
    freqs = rope_inv_freq(dim, theta).to(device)
    t = torch.arange(end, device=device, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    return torch.polar(torch.ones_like(freqs), freqs)          # complex64 (end, dim/2)


def _freqs_cis_at(positions, dim, theta, complex_dtype):
    real = torch.float64 if complex_dtype == torch.complex128 else torch.float32
    angles = positions.to(real).unsqueeze(-1) * rope_inv_freq(dim, theta).to(device=positions.device, dtype=real)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rotary_emb(x, freqs_cis):
    """x (..., dim) in interleaved pairs; freqs_cis broadcastable to (..., dim/2)."""
    real = torch.float64 if x.dtype == torch.float64 else torch.float32
    x_ = torch.view_as_complex(x.to(real).reshape(*x.shape[:-1], -1, 2).contiguous())
    out = torch.view_as_real(x_ * freqs_cis.to(x_.dtype)).flatten(-2)
    return out.type_as(x)


def interleaved_to_half_split(d):
    if d < 2 or d % 2:
        raise ValueError(f"d={d} must be even")
    return torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2)))


def _rotary_dim(x, rotary_dim):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if not (2 <= r <= d) or r % 2:
        raise ValueError(f"bad rotary_dim={r} for d={d}: it must be even, at least 2 and at most d")
    return r


def _apply_with(x, r, interleaved, freqs_cis):
    head, tail = x[..., :r], x[..., r:]
    if interleaved:
        turned = apply_rotary_emb(head, freqs_cis)
    else:
        perm = interleaved_to_half_split(r).to(x.device)     # interleaved feature -> half-split slot
        inverse = torch.argsort(perm)
        turned = apply_rotary_emb(head[..., inverse], freqs_cis)[..., perm]
    return torch.cat((turned, tail), dim=-1)


def rotate_complex(x, angles):
    """Half-split pairs permuted into interleaved order for view_as_complex, turned, permuted back."""
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"x has an odd last dimension d={d}")
    angles = torch.as_tensor(angles, device=x.device)
    a = angles.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    try:
        out = _apply_with(x, d, False, torch.polar(torch.ones_like(a), a))
    except RuntimeError as err:
        raise ValueError(f"angles of shape {tuple(angles.shape)} do not fit x: {err}") from None
    if out.shape != x.shape:
        raise ValueError(f"angles of shape {tuple(angles.shape)} make the result bigger than x")
    return out


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    r = _rotary_dim(x, rotary_dim)
    positions = torch.as_tensor(positions, device=x.device)
    cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    return _apply_with(x, r, interleaved, _freqs_cis_at(positions, r, base, cdtype))


def rope_matrix(position, d, base=10000.0, interleaved=False):
    z = _freqs_cis_at(torch.tensor(float(position), dtype=torch.float64), d, base, torch.complex128)
    blocks = [torch.tensor([[w.real, -w.imag], [w.imag, w.real]], dtype=torch.float64) for w in z.tolist()]
    R = torch.block_diag(*blocks)                             # interleaved basis
    if not interleaved:
        perm = interleaved_to_half_split(d)
        R = R[perm][:, perm]
    return R.float()


class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        if d < 2 or d % 2:
            raise ValueError(f"d={d} must be even")
        self.dim, self.theta, self.interleaved = d, base, interleaved
        self.register_buffer("freqs_cis", precompute_freqs_cis(d, max_len, base), persistent=False)

    def forward(self, q, k, positions):
        if q.shape[-1] != self.dim:
            raise ValueError(f"q's last dimension {q.shape[-1]} != d={self.dim}")
        if k.shape[-1] != self.dim:
            raise ValueError(f"k's last dimension {k.shape[-1]} != d={self.dim}")
        positions = torch.as_tensor(positions, device=self.freqs_cis.device)
        if positions.is_floating_point() or (positions.numel() and positions.min().item() < 0):
            freqs = _freqs_cis_at(positions, self.dim, self.theta, torch.complex64)
        else:
            end = positions.max().item() + 1 if positions.numel() else 0
            if end > self.freqs_cis.shape[0]:
                self.freqs_cis = precompute_freqs_cis(self.dim, max(end, 2 * self.freqs_cis.shape[0]), self.theta,
                                                      self.freqs_cis.device)
            freqs = self.freqs_cis[positions]
        freqs = freqs.to(q.device)
        return (_apply_with(q, self.dim, self.interleaved, freqs),
                _apply_with(k, self.dim, self.interleaved, freqs))
