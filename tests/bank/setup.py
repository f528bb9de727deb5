"""Wrong implementations of section 2 (formal setup) that learners really write."""
from tests.bank import Bug

BUGS = [
    # ---------------------------------------------------------------- relative_positions
    Bug("relative_key_minus_query", "setup.relative_positions", '''
def relative_positions(q_pos, k_pos):
    return k_pos.long()[None, :] - q_pos.long()[:, None]
''', mistake="k_pos - q_pos", key="offset-sign"),
    Bug("relative_from_indices", "setup.relative_positions", '''
def relative_positions(q_pos, k_pos):
    if q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError("q_pos and k_pos must be 1-D")
    i = torch.arange(len(q_pos), device=q_pos.device)
    j = torch.arange(len(k_pos), device=q_pos.device)
    return i[:, None] - j[None, :]
''', mistake="ignoring the given positions", key="positions-ignored"),
    Bug("relative_float", "setup.relative_positions", '''
def relative_positions(q_pos, k_pos):
    if q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError("q_pos and k_pos must be 1-D")
    return q_pos.float()[:, None] - k_pos.float()[None, :]
''', mistake="expected int64", key="wrong-dtype"),
    Bug("relative_no_dim_check", "setup.relative_positions", '''
def relative_positions(q_pos, k_pos):
    return q_pos.long().reshape(-1, 1) - k_pos.long().reshape(1, -1)
''', mistake="naming 'q_pos'", key="no-value-error"),
    # ---------------------------------------------------------------- position_ids_from_mask
    Bug("ids_arange", "setup.position_ids_from_mask", '''
def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    return torch.arange(attention_mask.shape[1], device=attention_mask.device).expand(attention_mask.shape).clone()
''', mistake="arange(T) in every row", key="positions-ignored"),
    Bug("ids_padding_not_zeroed", "setup.position_ids_from_mask", '''
def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    return attention_mask.long().cumsum(-1) - 1
''', mistake="without zeroing the padding", key="padding-ids"),
    Bug("ids_padding_one", "setup.position_ids_from_mask", '''
def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    ids = attention_mask.long().cumsum(-1) - 1
    return ids.masked_fill(attention_mask == 0, 1)
''', mistake="padding set to 1", key="padding-ids"),
    Bug("ids_from_one", "setup.position_ids_from_mask", '''
def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    m = attention_mask.long()
    return m.cumsum(-1) * m
''', mistake="counting from 1", key="count-from-one"),
    Bug("ids_clamped", "setup.position_ids_from_mask", '''
def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
''', mistake="repeats the last id", key="padding-ids"),
    Bug("ids_keep_mask_dtype", "setup.position_ids_from_mask", '''
def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, T)")
    m = attention_mask.long()
    return ((m.cumsum(-1) - 1) * m).to(attention_mask.dtype if attention_mask.dtype != torch.bool else torch.long)
''', mistake="expected int64", key="wrong-dtype"),
    # ---------------------------------------------------------------- next_position_ids
    Bug("next_counts_padding", "setup.next_position_ids", '''
def next_position_ids(attention_mask, n_new=1):
    if n_new < 1:
        raise ValueError("n_new must be at least 1")
    B, T = attention_mask.shape
    return T + torch.arange(n_new, device=attention_mask.device).expand(B, n_new)
''', mistake="counting padding", key="counts-padding"),
    Bug("next_restarts_at_zero", "setup.next_position_ids", '''
def next_position_ids(attention_mask, n_new=1):
    if n_new < 1:
        raise ValueError("n_new must be at least 1")
    return torch.arange(n_new, device=attention_mask.device).expand(attention_mask.shape[0], n_new)
''', mistake="restarting at 0", key="positions-restart"),
    Bug("next_off_by_one", "setup.next_position_ids", '''
def next_position_ids(attention_mask, n_new=1):
    if n_new < 1:
        raise ValueError("n_new must be at least 1")
    last = attention_mask.long().sum(-1, keepdim=True) - 1
    return last + torch.arange(n_new, device=attention_mask.device)
''', mistake="off by one", key="off-by-one"),
    Bug("next_squeezed", "setup.next_position_ids", '''
_right_next = next_position_ids
def next_position_ids(attention_mask, n_new=1):
    ids = _right_next(attention_mask, n_new)
    return ids.squeeze(-1) if n_new == 1 else ids
''', mistake="(B, n_new)", key="squeezed"),
    Bug("next_no_check", "setup.next_position_ids", '''
def next_position_ids(attention_mask, n_new=1):
    n = attention_mask.long().sum(-1, keepdim=True)
    return n + torch.arange(max(n_new, 0), device=attention_mask.device)
''', mistake="naming 'n_new'", key="no-value-error"),
    # ---------------------------------------------------------------- add_positions
    Bug("add_clamps_ids", "setup.add_positions", '''
def add_positions(x, table, position_ids=None):
    if table.shape[-1] != x.shape[-1]:
        raise ValueError("table must have width d")
    if position_ids is None:
        position_ids = torch.arange(x.shape[-2], device=x.device)
    return x + table[position_ids.clamp(0, table.shape[0] - 1)].to(x.dtype)
''', mistake="ids clamped", key="ids-clamped"),
    Bug("add_negative_wraps", "setup.add_positions", '''
def add_positions(x, table, position_ids=None):
    if table.shape[-1] != x.shape[-1]:
        raise ValueError("table must have width d")
    if position_ids is None:
        position_ids = torch.arange(x.shape[-2], device=x.device)
    if int(position_ids.max()) >= table.shape[0]:
        raise ValueError(f"position id beyond the table of L={table.shape[0]} rows")
    return x + table[position_ids].to(x.dtype)
''', mistake="negative id", key="ids-clamped"),
    Bug("add_ignores_ids", "setup.add_positions", '''
def add_positions(x, table, position_ids=None):
    if table.shape[-1] != x.shape[-1]:
        raise ValueError("table must have width d")
    if x.shape[-2] > table.shape[0]:
        raise ValueError(f"sequence longer than the table of L={table.shape[0]} rows")
    return x + table[: x.shape[-2]].to(x.dtype)
''', mistake="ignoring position_ids", key="positions-ignored"),
    Bug("add_in_place", "setup.add_positions", '''
_right_add = add_positions
def add_positions(x, table, position_ids=None):
    out = _right_add(x, table, position_ids)
    x.copy_(out)
    return x
''', mistake="in place", key="in-place"),
    Bug("add_table_dtype", "setup.add_positions", '''
_right_add = add_positions
def add_positions(x, table, position_ids=None):
    return _right_add(x.to(table.dtype), table, position_ids)
''', mistake="expected float16", key="wrong-dtype"),
    Bug("add_default_ids_unchecked", "setup.add_positions", '''
_right_add = add_positions
def add_positions(x, table, position_ids=None):
    if position_ids is None:
        t = x.shape[-2]
        rows = table[torch.arange(t).clamp(max=table.shape[0] - 1)]
        return (x.float() + rows.float()).to(x.dtype)
    return _right_add(x, table, position_ids)
''', key="no-value-error"),
    # ---------------------------------------------------------------- interpolated_positions
    Bug("interp_always", "setup.interpolated_positions", '''
def interpolated_positions(positions, train_len, target_len):
    if train_len < 1 or target_len < 1:
        raise ValueError(f"train_len and target_len must be >= 1, got train_len={train_len}, target_len={target_len}")
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    return positions.to(dtype) * train_len / target_len
''', mistake="target_len <= train_len", key="interpolation"),
    Bug("interp_inverted", "setup.interpolated_positions", '''
def interpolated_positions(positions, train_len, target_len):
    if train_len < 1 or target_len < 1:
        raise ValueError(f"train_len and target_len must be >= 1, got train_len={train_len}, target_len={target_len}")
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    scale = target_len / train_len if target_len > train_len else 1.0
    return positions.to(dtype) * scale
''', mistake="inverted ratio", key="interpolation"),
    Bug("interp_integer_division", "setup.interpolated_positions", '''
def interpolated_positions(positions, train_len, target_len):
    if train_len < 1 or target_len < 1:
        raise ValueError(f"train_len and target_len must be >= 1, got train_len={train_len}, target_len={target_len}")
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    if target_len > train_len:
        return (positions * train_len // target_len).to(dtype)
    return positions.to(dtype)
''', mistake="rounded or integer-divided", key="interpolation"),
    Bug("interp_endpoint_ratio", "setup.interpolated_positions", '''
def interpolated_positions(positions, train_len, target_len):
    if train_len < 1 or target_len < 1:
        raise ValueError(f"train_len and target_len must be >= 1, got train_len={train_len}, target_len={target_len}")
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    scale = (train_len - 1) / (target_len - 1) if target_len > train_len else 1.0
    return positions.to(dtype) * scale
''', mistake="(train_len - 1) / (target_len - 1)", key="interpolation"),
    Bug("interp_unchanged_keeps_ints", "setup.interpolated_positions", '''
def interpolated_positions(positions, train_len, target_len):
    if train_len < 1 or target_len < 1:
        raise ValueError(f"train_len and target_len must be >= 1, got train_len={train_len}, target_len={target_len}")
    if target_len > train_len:
        return positions * train_len / target_len
    return positions
''', mistake="expected float32", key="wrong-dtype"),
]
