"""Section 2, Formal setup: reference solutions.

This module is the single source of the solution cells in source_notebooks/02_setup:
`python -m course.build` copies each definition into its tagged cell.
"""
import torch


def position_ids_from_mask(attention_mask):
    """Position ids (B, T), int64, from a (B, T) mask of 0/1 or bool (1/True = real token).

    Real tokens are numbered 0, 1, 2, ... from left to right in each row; padding gets 0.
    """
    ### BEGIN SOLUTION
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (B, T), got shape {tuple(attention_mask.shape)}")
    real = attention_mask.to(torch.bool).long()
    return (real.cumsum(dim=-1) - 1) * real
    ### END SOLUTION


def next_position_ids(attention_mask, n_new=1):
    """Position ids (B, n_new), int64, of the next n_new generated tokens of each row.

    A row with n real tokens (mask ones) continues at n, n + 1, ..., n + n_new - 1.
    """
    ### BEGIN SOLUTION
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (B, T), got shape {tuple(attention_mask.shape)}")
    if n_new < 1:
        raise ValueError(f"n_new must be at least 1, got n_new={n_new}")
    n_real = attention_mask.to(torch.bool).long().sum(dim=-1, keepdim=True)
    return n_real + torch.arange(n_new, device=attention_mask.device)
    ### END SOLUTION


def add_positions(x, table, position_ids=None):
    """x (B, T, d) plus the rows of table (L, d) chosen by position_ids ((T,) or (B, T); default 0..T-1).

    An id outside [0, L) is a ValueError; the result has x's dtype.
    """
    ### BEGIN SOLUTION
    if x.dim() < 2:
        raise ValueError(f"x must be (B, T, d), got shape {tuple(x.shape)}")
    t, d = x.shape[-2], x.shape[-1]
    if table.dim() != 2 or table.shape[1] != d:
        raise ValueError(f"table must be (L, d) with d = {d}, got shape {tuple(table.shape)}")
    length = table.shape[0]
    if position_ids is None:
        position_ids = torch.arange(t, device=table.device)
    position_ids = torch.as_tensor(position_ids, device=table.device)
    if position_ids.is_floating_point() or position_ids.dtype == torch.bool:
        raise ValueError(f"position_ids must be integers, got dtype {position_ids.dtype}")
    try:
        fits = torch.broadcast_shapes(position_ids.shape + (d,), x.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"position_ids must be (T,) or (B, T) for x of shape {tuple(x.shape)}, "
                         f"got shape {tuple(position_ids.shape)}")
    if position_ids.numel():
        low, high = int(position_ids.min()), int(position_ids.max())
        if low < 0 or high >= length:
            raise ValueError(f"position ids must lie in [0, L) for a table of L={length} rows, "
                             f"got ids from {low} to {high}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    return (x.to(work) + table[position_ids].to(work)).to(x.dtype)
    ### END SOLUTION


def relative_positions(q_pos, k_pos):
    """Relative positions (T_q, T_k), int64: r[i, j] = q_pos[i] - k_pos[j]."""
    ### BEGIN SOLUTION
    q_pos, k_pos = torch.as_tensor(q_pos), torch.as_tensor(k_pos)
    for name, pos in (("q_pos", q_pos), ("k_pos", k_pos)):
        if pos.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(pos.shape)}")
        if pos.is_floating_point():
            raise ValueError(f"{name} must hold integer positions, got dtype {pos.dtype}")
    return q_pos.long()[:, None] - k_pos.long().to(q_pos.device)[None, :]
    ### END SOLUTION


def interpolated_positions(positions, train_len, target_len):
    """Positions squeezed into the trained range: positions * train_len / target_len.

    Only when target_len > train_len; otherwise the positions come back unchanged.
    Float32 result (float64 for float64 positions).
    """
    ### BEGIN SOLUTION
    if train_len < 1:
        raise ValueError(f"train_len must be at least 1, got train_len={train_len}")
    if target_len < 1:
        raise ValueError(f"target_len must be at least 1, got target_len={target_len}")
    positions = torch.as_tensor(positions)
    out_dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    scale = train_len / target_len if target_len > train_len else 1.0
    return (positions.to(torch.float64) * scale).to(out_dtype)
    ### END SOLUTION
