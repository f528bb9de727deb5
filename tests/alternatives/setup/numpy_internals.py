"""Section 2 computed in NumPy: np.subtract.outer for offsets, np.cumsum for mask
positions, fancy indexing plus a float64 add for table lookups; every result is turned
back into a tensor on the input's device (and x's dtype where x is given)."""
import numpy as np
import torch


def _np(t):
    return t.detach().cpu().numpy()


def relative_positions(q_pos, k_pos):
    q, k = _np(torch.as_tensor(q_pos)), _np(torch.as_tensor(k_pos))
    if q.ndim != 1 or k.ndim != 1:
        raise ValueError(f"q_pos and k_pos must be 1-D, got q_pos.ndim={q.ndim}, k_pos.ndim={k.ndim}")
    out = np.subtract.outer(q.astype(np.int64), k.astype(np.int64))
    return torch.from_numpy(out).to(torch.as_tensor(q_pos).device)


def position_ids_from_mask(attention_mask):
    m = _np(attention_mask)
    if m.ndim != 2:
        raise ValueError(f"attention_mask must have shape (B, T), not {m.shape}")
    real = (m != 0).astype(np.int64)
    ids = np.where(real == 1, np.cumsum(real, axis=1) - 1, 0)
    return torch.from_numpy(ids).to(attention_mask.device)


def next_position_ids(attention_mask, n_new=1):
    if n_new < 1:
        raise ValueError(f"n_new={n_new}: ask for at least one new token")
    m = _np(attention_mask)
    if m.ndim != 2:
        raise ValueError("attention_mask must be 2-D (B, T)")
    counts = np.count_nonzero(m, axis=1).astype(np.int64)
    out = counts[:, None] + np.arange(n_new, dtype=np.int64)[None, :]
    return torch.from_numpy(out).to(attention_mask.device)


def add_positions(x, table, position_ids=None):
    L = table.shape[0]
    if table.ndim != 2 or table.shape[1] != x.shape[-1]:
        raise ValueError(f"table of shape {tuple(table.shape)} does not fit x of shape {tuple(x.shape)}")
    T = x.shape[-2]
    ids = np.arange(T) if position_ids is None else _np(torch.as_tensor(position_ids)).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= L):
        raise ValueError(f"position ids must be in [0, L), L={L}; got min {ids.min()}, max {ids.max()}")
    if ids.shape[-1] != T or ids.ndim > 2:
        raise ValueError(f"position_ids of shape {ids.shape} do not fit x of shape {tuple(x.shape)}")
    rows = table.detach().cpu().double().numpy()[ids]
    summed = x.detach().cpu().double().numpy() + rows
    return torch.from_numpy(summed).to(device=x.device, dtype=x.dtype)


def interpolated_positions(positions, train_len, target_len):
    if train_len < 1:
        raise ValueError(f"train_len={train_len} < 1")
    if target_len < 1:
        raise ValueError(f"target_len={target_len} < 1")
    positions = torch.as_tensor(positions)
    p = _np(positions.to(torch.float64))
    if target_len > train_len:
        p = p * train_len / target_len
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    return torch.from_numpy(p).to(device=positions.device, dtype=dtype)
