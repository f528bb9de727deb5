"""RoPE computed in NumPy float64: angle grids with np.multiply.outer-style broadcasting,
pairs rotated with explicit a cos - b sin formulas, and a RotaryEmbedding whose cos/sin
cache is a pair of NumPy arrays (plain attributes, not buffers) regrown by doubling.
Results go back to the input's device and dtype."""
import numpy as np
import torch
from torch import nn


def _np_inv_freq(d, base):
    if d < 2 or d % 2:
        raise ValueError(f"odd or too small d={d}")
    return np.float64(base) ** (-np.arange(0, d, 2, dtype=np.float64) / d)


def rope_inv_freq(d, base=10000.0):
    return torch.from_numpy(_np_inv_freq(d, base)).float()


def _rotate_np(xa, cos, sin, interleaved):
    r = 2 * cos.shape[-1]
    head = xa[..., :r]
    if interleaved:
        a, b = head[..., 0::2], head[..., 1::2]
    else:
        a, b = head[..., : r // 2], head[..., r // 2:]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    out = np.array(xa, copy=True)
    if interleaved:
        out[..., 0:r:2], out[..., 1:r:2] = ra, rb
    else:
        out[..., : r // 2], out[..., r // 2: r] = ra, rb
    return out


def _back(arr, like):
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device=like.device, dtype=like.dtype)


def _host(t):
    return t.detach().cpu().to(torch.float64).numpy()


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 2 <= r <= d:
        raise ValueError(f"rotary_dim must be even and between 2 and d={d}; got {r}")
    pos = _host(torch.as_tensor(positions))
    angles = pos[..., None] * _np_inv_freq(r, base)
    xa = _host(x)
    return _back(_rotate_np(xa, np.cos(angles), np.sin(angles), interleaved), x)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    eye = np.eye(d)
    angles = float(position) * _np_inv_freq(d, base)
    # rows of eye rotated = eye @ R.T = R.T
    return torch.from_numpy(_rotate_np(eye, np.cos(angles), np.sin(angles), interleaved).T.copy()).float()


def interleaved_to_half_split(d):
    if d < 2 or d % 2:
        raise ValueError(f"odd or too small d={d}")
    return torch.from_numpy(np.concatenate((np.arange(0, d, 2), np.arange(1, d, 2))).astype(np.int64))


class RotaryEmbedding(nn.Module):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__()
        self.inv = _np_inv_freq(d, base)
        self.d, self.interleaved = d, interleaved
        self._grow(max_len)

    def _grow(self, n):
        angles = np.arange(n, dtype=np.float64)[:, None] * self.inv
        self.cos_np, self.sin_np = np.cos(angles), np.sin(angles)

    def forward(self, q, k, positions):
        for name, t in (("q", q), ("k", k)):
            if t.shape[-1] != self.d:
                raise ValueError(f"expected {name} with last dimension d={self.d}, got {t.shape[-1]}")
        pos = torch.as_tensor(positions).detach().cpu()
        if pos.is_floating_point() or (pos.numel() and int(pos.min()) < 0):
            angles = pos.to(torch.float64).numpy()[..., None] * self.inv
            cos, sin = np.cos(angles), np.sin(angles)
        else:
            idx = pos.to(torch.int64).numpy()
            if idx.size and idx.max() >= self.cos_np.shape[0]:
                self._grow(max(int(idx.max()) + 1, 2 * self.cos_np.shape[0]))
            cos, sin = self.cos_np[idx], self.sin_np[idx]
        return (_back(_rotate_np(_host(q), cos, sin, self.interleaved), q),
                _back(_rotate_np(_host(k), cos, sin, self.interleaved), k))
