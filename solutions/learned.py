"""Section 4, learned absolute positions: reference solutions.

This module is the single source of the solution cells in source_notebooks/04_learned:
`python -m course.build` copies each definition into its tagged cell.
"""
import torch
from torch import nn


class LearnedPositionalEmbedding(nn.Module):
    """A trainable table of max_len position vectors, added to the input.

    weight: nn.Parameter (max_len, d), initialised normal with std 0.02.
    forward(x, position_ids=None) returns x + weight[position_ids] for x (..., T, d);
    position_ids default to 0 .. T-1 and may be (T,) or (B, T). An id outside
    [0, max_len) raises ValueError.
    """

    def __init__(self, max_len, d):
        super().__init__()
        ### BEGIN SOLUTION
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, got max_len={max_len}")
        if d < 1:
            raise ValueError(f"d must be at least 1, got d={d}")
        self.max_len, self.d = int(max_len), int(d)
        self.weight = nn.Parameter(torch.empty(self.max_len, self.d))
        nn.init.normal_(self.weight, mean=0.0, std=0.02)
        ### END SOLUTION

    def forward(self, x, position_ids=None):
        ### BEGIN SOLUTION
        if x.dim() < 2 or x.shape[-1] != self.d:
            raise ValueError(f"x must be (..., T, d) with d={self.d}, got shape {tuple(x.shape)}")
        t = x.shape[-2]
        if position_ids is None:
            if t > self.max_len:
                raise ValueError(f"{t} positions do not fit a table of max_len={self.max_len} rows")
            position_ids = torch.arange(t, device=self.weight.device)
        else:
            position_ids = torch.as_tensor(position_ids, device=self.weight.device)
            if position_ids.is_floating_point() or position_ids.dtype == torch.bool:
                raise ValueError(f"position_ids must be integers, got {position_ids.dtype}")
            if position_ids.numel():
                low, high = int(position_ids.min()), int(position_ids.max())
                if low < 0 or high >= self.max_len:
                    bad = low if low < 0 else high
                    raise ValueError(f"position id {bad} is outside the table [0, max_len={self.max_len})")
        rows = self.weight[position_ids]
        try:
            torch.broadcast_shapes(rows.shape, x.shape)
        except RuntimeError:
            raise ValueError(
                f"position_ids of shape {tuple(position_ids.shape)} do not fit x of shape {tuple(x.shape)}"
            ) from None
        work = torch.promote_types(x.dtype, rows.dtype)
        return (x.to(work) + rows.to(device=x.device, dtype=work)).to(x.dtype)
        ### END SOLUTION

    def extra_repr(self):
        return f"max_len={self.weight.shape[0]}, d={self.weight.shape[1]}"


def resize_position_table(table, new_len):
    """Resize a (old_len, d) table to (new_len, d) by linear interpolation along positions.

    Old row r sits at new coordinate r * (new_len - 1) / (old_len - 1): the first and last
    rows are kept. Fewer than 2 rows in or out raises ValueError. Returns a new tensor of
    the table's dtype.
    """
    ### BEGIN SOLUTION
    if table.dim() != 2:
        raise ValueError(f"table must be 2-D (old_len, d), got shape {tuple(table.shape)}")
    old_len = table.shape[0]
    if old_len < 2:
        raise ValueError(f"table needs at least 2 rows to interpolate, got {old_len}")
    if new_len < 2:
        raise ValueError(f"new_len must be at least 2, got new_len={new_len}")
    work = torch.float64 if table.dtype == torch.float64 else torch.float32
    # New row j reads the old table at coordinate j * (old_len - 1) / (new_len - 1).
    coords = torch.arange(int(new_len), dtype=torch.float64, device=table.device) * (old_len - 1) / (new_len - 1)
    low = coords.floor().long().clamp(max=old_len - 2)
    frac = (coords - low).to(work)[:, None]
    source = table.to(work)
    resized = source[low] * (1 - frac) + source[low + 1] * frac
    return resized.to(table.dtype)
    ### END SOLUTION
