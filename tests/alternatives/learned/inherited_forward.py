"""A learned table whose forward is inherited: a generic base class adds `self.weight` rows
(read with index_select) to x, and LearnedPositionalEmbedding only builds its parameter
(register_parameter, nn.init.normal_). Resizing multiplies the table by an explicit
(new_len, old_len) matrix of linear "hat" weights, via einsum."""
import torch
from torch import nn


class _AddsTableRows(nn.Module):
    """x + weight[position_ids]; subclasses provide `weight` (rows = positions)."""

    def forward(self, x, position_ids=None):
        n_rows = self.weight.shape[0]
        if x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"x has {x.shape[-1]} features, the table has {self.weight.shape[1]}")
        if position_ids is None:
            if x.shape[-2] > n_rows:
                raise ValueError(f"sequence of {x.shape[-2]} positions exceeds max_len={n_rows}")
            position_ids = torch.arange(x.shape[-2], device=self.weight.device)
        position_ids = position_ids.to(device=self.weight.device, dtype=torch.long)
        if position_ids.numel():
            if bool(position_ids.lt(0).any()) or bool(position_ids.ge(n_rows).any()):
                raise ValueError(f"position ids must lie in [0, max_len) with max_len={n_rows}")
        rows = torch.index_select(self.weight, 0, position_ids.reshape(-1)).reshape(*position_ids.shape, -1)
        work = torch.float64 if torch.float64 in (x.dtype, rows.dtype) else torch.float32
        return (x.to(work) + rows.to(device=x.device, dtype=work)).to(x.dtype)


class LearnedPositionalEmbedding(_AddsTableRows):
    def __init__(self, max_len, d):
        super().__init__()
        if max_len < 1:
            raise ValueError(f"max_len must be positive, got {max_len}")
        self.register_parameter("weight", nn.Parameter(torch.empty(max_len, d)))
        nn.init.normal_(self.weight, mean=0.0, std=0.02)


def resize_position_table(table, new_len):
    old_len = table.shape[0]
    if old_len < 2:
        raise ValueError(f"the table has {old_len} row(s); at least 2 are needed (table)")
    if new_len < 2:
        raise ValueError(f"new_len={new_len}; at least 2 rows are needed")
    work = torch.float64 if table.dtype == torch.float64 else torch.float32
    where = torch.linspace(0, old_len - 1, new_len, dtype=torch.float64, device=table.device)
    rows = torch.arange(old_len, dtype=torch.float64, device=table.device)
    hat = (1 - (where[:, None] - rows[None, :]).abs()).clamp(min=0)        # (new_len, old_len)
    return torch.einsum("no,od->nd", hat.to(work), table.to(work)).to(table.dtype)
