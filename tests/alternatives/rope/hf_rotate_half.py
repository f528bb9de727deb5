"""RoPE as Hugging Face writes it: `rotate_half` (GPT-NeoX pairs, also for rotate_complex, as x *
cos + rotate_half(x) * sin) and GPT-J's `rotate_every_two` (interleaved pairs), cos/sin of the
full width (frequencies repeated), a RotaryEmbedding with `inv_freq`, `cos_cached`,
`sin_cached` buffers rebuilt larger when a position falls past the cache. As in transformers,
the tables are float32 and are cast to the input's dtype before the multiply-add (angles and
tables are float32; the rotation itself runs in the input's dtype), and the angles are computed
inside `torch.autocast(device_type=x.device.type, enabled=False)` like transformers' rotary
code."""
import torch
from torch import nn


def rope_inv_freq(d, base=10000.0):
    if d % 2 != 0 or d < 2:
        raise ValueError(f"rope_inv_freq: d must be even and >= 2 (d={d})")
    return 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def _cos_sin(freqs, interleaved):
    emb = freqs.repeat_interleave(2, dim=-1) if interleaved else torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def _rotate(x, cos, sin, interleaved):
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + (rotate_every_two(x) if interleaved else rotate_half(x)) * sin


def rotate_complex(x, angles):
    h = x.shape[-1] // 2
    if x.shape[-1] % 2 != 0:
        raise ValueError(f"rotate_complex: x must have an even last dimension (d={x.shape[-1]})")
    angles = torch.as_tensor(angles, device=x.device)
    try:
        angles = torch.broadcast_to(angles, angles.shape[:-1] + (h,)) if angles.dim() else angles.expand(h)
        fits = torch.broadcast_shapes(angles.shape[:-1], x.shape[:-1]) == x.shape[:-1]
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"rotate_complex: angles {tuple(angles.shape)} must broadcast to x.shape[:-1] + (d/2,)")
    with torch.autocast(device_type=x.device.type, enabled=False):
        cos, sin = _cos_sin(angles.float(), False)
    return _rotate(x, cos, sin, False)


def _split(x, rotary_dim):
    d = x.shape[-1]
    rotary_dim = d if rotary_dim is None else rotary_dim
    if rotary_dim % 2 or rotary_dim < 2 or rotary_dim > d:
        raise ValueError(f"rotary_dim={rotary_dim} must be even and in [2, d] with d={d}")
    return x[..., :rotary_dim], x[..., rotary_dim:], rotary_dim


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    x_rot, x_pass, r = _split(x, rotary_dim)
    positions = torch.as_tensor(positions, device=x.device)
    inv_freq = rope_inv_freq(r, base).to(x.device)
    angle_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    device_type = x.device.type if isinstance(x.device.type, str) and x.device.type != "mps" else "cpu"
    with torch.autocast(device_type=device_type, enabled=False):  # Force float32 (as transformers does)
        freqs = positions.to(angle_dtype).unsqueeze(-1) * inv_freq.to(angle_dtype)
        cos, sin = _cos_sin(freqs, interleaved)
    return torch.cat((_rotate(x_rot, cos, sin, interleaved), x_pass), dim=-1)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    # x @ R.T == x * cos + rotate(x) * sin, with rotate(x) == x @ P.T, so R = diag(cos) + diag(sin) @ P
    inv_freq = rope_inv_freq(d, base).double()
    cos, sin = _cos_sin(float(position) * inv_freq, interleaved)
    P = (rotate_every_two if interleaved else rotate_half)(torch.eye(d, dtype=torch.float64)).T
    return (torch.diag(cos) + torch.diag(sin) @ P).float()


def interleaved_to_half_split(d):
    if d % 2 != 0 or d < 2:
        raise ValueError(f"d={d} must be even")
    return torch.arange(d).reshape(d // 2, 2).transpose(0, 1).flatten()


class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        self.dim = d
        self.base = base
        self.interleaved = interleaved
        self.max_position_embeddings = max_len
        self.register_buffer("inv_freq", rope_inv_freq(d, base), persistent=False)
        self._set_cos_sin_cache(max_len, self.inv_freq.device)

    def _set_cos_sin_cache(self, seq_len, device):
        self.max_seq_len_cached = seq_len
        t = torch.arange(seq_len, device=device, dtype=torch.int64).type_as(self.inv_freq)
        freqs = torch.outer(t, self.inv_freq)
        cos, sin = _cos_sin(freqs, self.interleaved)
        self.register_buffer("cos_cached", cos, persistent=False)
        self.register_buffer("sin_cached", sin, persistent=False)

    def forward(self, q, k, positions):
        for name, t in (("q", q), ("k", k)):
            if t.shape[-1] != self.dim:
                raise ValueError(f"{name} has last dimension {t.shape[-1]}, but this module rotates d={self.dim}")
        positions = torch.as_tensor(positions, device=self.inv_freq.device)
        if positions.is_floating_point() or (positions.numel() and int(positions.min()) < 0):
            freqs = positions.to(self.inv_freq.dtype).unsqueeze(-1) * self.inv_freq
            cos, sin = _cos_sin(freqs, self.interleaved)
        else:
            needed = int(positions.max()) + 1 if positions.numel() else 0
            if needed > self.max_seq_len_cached:
                self._set_cos_sin_cache(max(needed, 2 * self.max_seq_len_cached), self.inv_freq.device)
            cos, sin = self.cos_cached[positions], self.sin_cached[positions]
        cos, sin = cos.to(q.device), sin.to(q.device)
        return _rotate(q, cos, sin, self.interleaved), _rotate(k, cos, sin, self.interleaved)
