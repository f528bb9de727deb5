"""Section 2 with plain Python loops over .tolist() values: offsets, mask positions and next
ids are counted per row with Python ints, ids are checked as Python ints, and the result
tensors are built from lists on the input's device."""
import torch


def relative_positions(q_pos, k_pos):
    if q_pos.dim() != 1:
        raise ValueError("q_pos must be a 1-D tensor of positions")
    if k_pos.dim() != 1:
        raise ValueError("k_pos must be a 1-D tensor of positions")
    qs, ks = [int(a) for a in q_pos.tolist()], [int(b) for b in k_pos.tolist()]
    rows = [[a - b for b in ks] for a in qs]
    return torch.tensor(rows, dtype=torch.long, device=q_pos.device).reshape(len(qs), len(ks))


def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    out = []
    for row in attention_mask.tolist():
        count, ids = 0, []
        for flag in row:
            if flag:
                ids.append(count)
                count += 1
            else:
                ids.append(0)
        out.append(ids)
    B, T = attention_mask.shape
    return torch.tensor(out, dtype=torch.long, device=attention_mask.device).reshape(B, T)


def next_position_ids(attention_mask, n_new=1):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    if n_new < 1:
        raise ValueError("n_new must be a positive number of tokens")
    rows = []
    for row in attention_mask.tolist():
        n = sum(1 for flag in row if flag)
        rows.append([n + j for j in range(n_new)])
    return torch.tensor(rows, dtype=torch.long, device=attention_mask.device).reshape(len(rows), n_new)


def add_positions(x, table, position_ids=None):
    L, width = table.shape[0], table.shape[-1]
    if table.dim() != 2 or width != x.shape[-1]:
        raise ValueError("table must be (L, d) with the d of x")
    T = x.shape[-2]
    if position_ids is None:
        position_ids = torch.arange(T, device=table.device)
    flat = [int(i) for i in position_ids.reshape(-1).tolist()]
    for i in flat:
        if i < 0 or i >= L:
            raise ValueError(f"position id {i} is outside the table: it has L={L} rows")
    if position_ids.shape[-1] != T:
        raise ValueError("position_ids must have one id per position of x")
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    rows = table[position_ids.to(table.device)].to(device=x.device, dtype=wide)
    return (x.to(wide) + rows).to(x.dtype)


def interpolated_positions(positions, train_len, target_len):
    if train_len < 1:
        raise ValueError("train_len must be >= 1")
    if target_len < 1:
        raise ValueError("target_len must be >= 1")
    positions = torch.as_tensor(positions)
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    values = [float(p) for p in positions.reshape(-1).tolist()]
    if target_len > train_len:
        values = [p * train_len / target_len for p in values]
    return torch.tensor(values, dtype=dtype, device=positions.device).reshape(positions.shape)
