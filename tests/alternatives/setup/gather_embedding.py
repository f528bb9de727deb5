"""Section 2 with indexing primitives: offsets from torch.cartesian_prod, mask positions as
"index minus padding seen so far", next ids via torch.count_nonzero, table rows read with
F.embedding, checks raised from tensor reductions; float32 or wider adds via
torch.result_type."""
import torch
import torch.nn.functional as F


def relative_positions(q_pos, k_pos):
    for name, p in (("q_pos", q_pos), ("k_pos", k_pos)):
        if p.ndim != 1:
            raise ValueError(f"{name} should be one-dimensional")
    pairs = torch.cartesian_prod(q_pos.to(torch.int64), k_pos.to(device=q_pos.device, dtype=torch.int64))
    return (pairs[:, 0] - pairs[:, 1]).reshape(q_pos.numel(), k_pos.numel())


def position_ids_from_mask(attention_mask):
    if attention_mask.ndim != 2:
        raise ValueError("attention_mask: expected (B, T)")
    real = attention_mask.ne(0)
    pads_so_far = (~real).to(torch.int64).cumsum(-1)
    index = torch.arange(attention_mask.shape[-1], device=attention_mask.device).expand_as(pads_so_far)
    return (index - pads_so_far).masked_fill(~real, 0)


def next_position_ids(attention_mask, n_new=1):
    if attention_mask.ndim != 2:
        raise ValueError("attention_mask: expected (B, T)")
    if n_new < 1:
        raise ValueError(f"n_new should be >= 1, got {n_new}")
    n = torch.count_nonzero(attention_mask, dim=-1).to(torch.int64)
    return n.unsqueeze(-1) + torch.arange(n_new, dtype=torch.int64, device=attention_mask.device)


def add_positions(x, table, position_ids=None):
    if table.ndim != 2 or table.size(-1) != x.size(-1):
        raise ValueError(f"table (L, d) must match x's d={x.size(-1)}")
    L = table.size(0)
    if position_ids is None:
        position_ids = torch.arange(x.size(-2), device=x.device)
    if position_ids.numel() > 0 and bool(((position_ids < 0) | (position_ids >= L)).any()):
        raise ValueError(f"position_ids outside [0, L) where L={L} is the table length")
    rows = F.embedding(position_ids.to(device=table.device, dtype=torch.int64), table).to(x.device)
    wide = torch.promote_types(torch.result_type(x, rows), torch.float32)
    return torch.add(x.to(wide), rows.to(wide)).to(x.dtype)


def interpolated_positions(positions, train_len, target_len):
    if train_len < 1 or target_len < 1:
        bad = "train_len" if train_len < 1 else "target_len"
        raise ValueError(f"{bad} must be a length of at least 1")
    positions = torch.as_tensor(positions)
    out = positions.to(torch.promote_types(positions.dtype, torch.float32))
    if out.dtype != torch.float64:
        out = out.to(torch.float32)
    if target_len > train_len:
        return torch.mul(out, train_len / target_len)
    return out.clone()
