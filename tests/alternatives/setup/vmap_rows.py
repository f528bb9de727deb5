"""Section 2 written per row and lifted with torch.vmap: one function handles one mask row
(or one batch entry of x) and vmap maps it over the batch; offsets are a vmap over query
positions. Validation reads Python ints with .item()."""
import torch


def relative_positions(q_pos, k_pos):
    if q_pos.dim() != 1:
        raise ValueError(f"q_pos: expected 1-D, got {q_pos.dim()}-D")
    if k_pos.dim() != 1:
        raise ValueError(f"k_pos: expected 1-D, got {k_pos.dim()}-D")
    k64 = k_pos.to(device=q_pos.device, dtype=torch.int64)
    return torch.vmap(lambda one: one - k64)(q_pos.to(torch.int64))


def _row_ids(row):
    real = (row != 0).to(torch.int64)
    return (torch.cumsum(real, 0) - 1) * real


def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    return torch.vmap(_row_ids)(attention_mask)


def next_position_ids(attention_mask, n_new=1):
    if n_new < 1:
        raise ValueError(f"n_new must be at least 1 (got {n_new})")
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    steps = torch.arange(n_new, dtype=torch.int64, device=attention_mask.device)
    return torch.vmap(lambda row: (row != 0).to(torch.int64).sum() + steps)(attention_mask)


def add_positions(x, table, position_ids=None):
    if table.dim() != 2 or table.shape[-1] != x.shape[-1]:
        raise ValueError(f"x has d={x.shape[-1]} features but the position rows have {table.shape[-1]}")
    L = table.shape[0]
    if position_ids is None:
        position_ids = torch.arange(x.shape[-2], device=table.device)
    if position_ids.numel():
        if position_ids.min().item() < 0 or position_ids.max().item() >= L:
            raise ValueError(f"every position id must be below L={L} and not negative")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    tab = table.to(device=x.device, dtype=work)

    def one(xb, ids):
        return xb.to(work) + tab[ids]

    if position_ids.dim() == 1:
        out = torch.vmap(one, in_dims=(0, None))(x, position_ids.to(x.device))
    else:
        out = torch.vmap(one, in_dims=(0, 0))(x, position_ids.to(x.device))
    return out.to(x.dtype)


def interpolated_positions(positions, train_len, target_len):
    if train_len < 1:
        raise ValueError(f"train_len must be >= 1 (got {train_len})")
    if target_len < 1:
        raise ValueError(f"target_len must be >= 1 (got {target_len})")
    positions = torch.as_tensor(positions)
    want = torch.float64 if positions.dtype == torch.float64 else torch.float32
    ratio = train_len / target_len if target_len > train_len else 1.0
    return (positions.to(torch.float64) * ratio).to(want)
