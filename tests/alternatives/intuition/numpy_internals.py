"""Section 1 computed in NumPy float64: tensors are copied to host arrays, attention is done
with np.matmul / np.where / a stable softmax, and the results are turned back into tensors
on the input's device and dtype. The causal mask is np.tri with a diagonal offset; the
shift gap is NumPy's max, an np.float64 (which is a Python float subclass)."""
import math

import numpy as np
import torch


def _host(t):
    return t.detach().to("cpu", torch.float64).numpy()


def attention(q, k, v, mask=None, bias=None):
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"feature sizes of q ({q.shape[-1]}) and k ({k.shape[-1]}) differ")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v has {v.shape[-2]} rows but k has {k.shape[-2]} keys")
    qa, ka, va = _host(q), _host(k), _host(v)
    scores = np.matmul(qa, np.swapaxes(ka, -1, -2)) / math.sqrt(qa.shape[-1])
    if bias is not None:
        scores = scores + _host(bias)
    if mask is not None:
        allowed = mask.detach().cpu().numpy().astype(bool)
        scores, allowed = np.broadcast_arrays(scores, allowed)
        scores = np.where(allowed, scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(scores - top)
    total = e.sum(axis=-1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    out = np.matmul(weights, va)

    def back(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=q.device, dtype=q.dtype)

    return back(out), back(weights)


def causal_mask(t_q, t_k=None):
    if t_k is None:
        t_k = t_q
    if t_q < 1:
        raise ValueError(f"t_q must be positive, got {t_q}")
    if t_k < t_q:
        raise ValueError(f"t_k ({t_k}) < t_q ({t_q}): more queries than keys")
    return torch.from_numpy(np.tri(t_q, t_k, k=t_k - t_q, dtype=bool))


def shift_gap(score_fn, q, k, positions, shift):
    a = score_fn(q, k, positions + shift, positions + shift)
    b = score_fn(q, k, positions, positions)
    return np.max(np.abs(_host(a) - _host(b)))           # np.float64, a subclass of float
