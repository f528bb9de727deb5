"""Relative positions computed in NumPy: T5 buckets with float32 NumPy logs (as T5 does in
float32), the bias by fancy indexing, and Shaw's scores and attention in float64 with
np.take on a clipped offset grid and np.einsum; results go back to the input's device and
dtype."""
import math

import numpy as np
import torch


def _bucket_np(rel, bidirectional, num_buckets, max_distance):
    rel = rel.astype(np.int64)
    n = num_buckets
    out = np.zeros_like(rel)
    if bidirectional:
        n //= 2
        out += (rel > 0).astype(np.int64) * n
        dist = np.abs(rel)
    else:
        dist = np.maximum(-rel, 0)
    exact = n // 2
    with np.errstate(divide="ignore", invalid="ignore"):   # log(0) in entries np.where discards
        scaled = np.log(dist.astype(np.float32) / np.float32(exact)) / np.float32(math.log(max_distance / exact))
        far = exact + (scaled * np.float32(n - exact)).astype(np.int64, casting="unsafe")
    far = np.minimum(far, n - 1)
    return out + np.where(dist < exact, dist, far)


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    rel = torch.as_tensor(relative_position)
    half = num_buckets // 2 if bidirectional else num_buckets
    if half // 2 < 1 or max_distance <= half // 2:
        raise ValueError(f"num_buckets={num_buckets} / max_distance={max_distance} leave no log-spaced buckets")
    b = _bucket_np(rel.detach().cpu().numpy(), bidirectional, num_buckets, max_distance)
    return torch.from_numpy(np.asarray(b, dtype=np.int64)).to(rel.device)


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if table.ndim != 2:
        raise ValueError("table: expected (num_buckets, H)")
    qp = q_pos.detach().cpu().numpy().astype(np.int64)
    kp = k_pos.detach().cpu().numpy().astype(np.int64)
    b = _bucket_np(kp[None, :] - qp[:, None], bidirectional, table.shape[0], max_distance)
    idx = torch.from_numpy(b).to(table.device)
    return table[idx].permute(2, 0, 1)


def _host(t):
    return t.detach().cpu().to(torch.float64).numpy()


def _offsets(t_q, t_k, K):
    i = np.arange(t_k - t_q, t_k)
    j = np.arange(t_k)
    return np.clip(j[None, :] - i[:, None], -K, K) + K


def _validate(q, k, rel, K, width, name):
    if q.shape[-2] > k.shape[-2]:
        raise ValueError(f"more queries ({q.shape[-2]}) than keys ({k.shape[-2]}): q is longer than k")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError("q and k feature sizes differ")
    if tuple(rel.shape) != (2 * K + 1, width):
        raise ValueError(f"{name} has shape {tuple(rel.shape)}, expected ({2 * K + 1}, {width})")


def _scores_np(q, k, rel_k, K):
    qa, ka, ra = _host(q), _host(k), _host(rel_k)
    idx = _offsets(q.shape[-2], k.shape[-2], K)
    R = np.take(ra, idx, axis=0)                                      # (T_q, T_k, d)
    s = np.einsum("...id,...jd->...ij", qa, ka) + np.einsum("...id,ijd->...ij", qa, R)
    return s / math.sqrt(q.shape[-1])


def shaw_relative_scores(q, k, rel_k, max_distance):
    _validate(q, k, rel_k, max_distance, q.shape[-1], "rel_k")
    return torch.from_numpy(_scores_np(q, k, rel_k, max_distance)).to(device=q.device, dtype=q.dtype)


def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    _validate(q, k, rel_k, max_distance, q.shape[-1], "rel_k")
    _validate(q, k, rel_v, max_distance, v.shape[-1], "rel_v")
    s = _scores_np(q, k, rel_k, max_distance)
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    Rv = np.take(_host(rel_v), _offsets(q.shape[-2], k.shape[-2], max_distance), axis=0)   # (T_q, T_k, d_v)
    out = np.einsum("...ij,...jd->...id", w, _host(v)) + np.einsum("...ij,ijd->...id", w, Rv)
    return torch.from_numpy(out).to(device=q.device, dtype=q.dtype)
