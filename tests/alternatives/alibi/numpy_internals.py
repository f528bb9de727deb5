"""ALiBi computed in NumPy float64: slopes by the paper's recursion on NumPy arrays, the bias
from np.abs(np.subtract.outer(...)), attention with np.matmul, np.where(-inf) for the causal
mask and a max-shifted softmax; results go back to the input's device and dtype."""
import math

import numpy as np
import torch


def _slopes_np(n):
    def power_of_two(m):
        start = 2.0 ** (-(2.0 ** -(math.log2(m) - 3)))
        return start ** np.arange(1, m + 1, dtype=np.float64)

    if math.log2(n).is_integer():
        return power_of_two(n)
    closest = 2 ** math.floor(math.log2(n))
    return np.concatenate((power_of_two(closest), _slopes_np(2 * closest)[0::2][: n - closest]))


def alibi_slopes(n_heads):
    if n_heads < 1:
        raise ValueError(f"n_heads must be a positive head count, got {n_heads}")
    return torch.from_numpy(_slopes_np(int(n_heads))).to(torch.float32)


def alibi_bias(slopes, q_pos, k_pos):
    s = slopes.detach().cpu().to(torch.float64).numpy()
    qp = q_pos.detach().cpu().to(torch.float64).numpy()
    kp = k_pos.detach().cpu().to(torch.float64).numpy()
    bias = -s[:, None, None] * np.abs(np.subtract.outer(qp, kp))[None]
    return torch.from_numpy(bias).to(device=slopes.device, dtype=slopes.dtype)


def alibi_attention(q, k, v, causal=True):
    H, t_q, d = q.shape[-3:]
    t_k = k.shape[-2]
    if t_q > t_k:
        raise ValueError(f"more queries than keys: q has T_q={t_q}, k has T_k={t_k}")
    qa, ka, va = (t.detach().cpu().to(torch.float64).numpy() for t in (q, k, v))
    k_pos = np.arange(t_k, dtype=np.float64)
    q_pos = k_pos[t_k - t_q:]
    dist = np.abs(np.subtract.outer(q_pos, k_pos))
    scores = qa @ np.swapaxes(ka, -1, -2) / math.sqrt(d) - _slopes_np(H)[:, None, None] * dist
    if causal:
        scores = np.where(k_pos[None, :] <= q_pos[:, None], scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    w = np.exp(scores)
    w = w / w.sum(axis=-1, keepdims=True)
    return torch.from_numpy(w @ va).to(device=q.device, dtype=q.dtype)
