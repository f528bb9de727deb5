"""A learned table read by one-hot matrix products (the lookup style of TPU-era code):
`weight` is a plain nn.Parameter, rows are F.one_hot(ids, max_len) @ weight (rows not used
get exactly zero gradient), ids are checked with torch.where over the bad entries, and
fp16/bf16 inputs are upcast only when needed. Resizing uses F.grid_sample (bilinear,
align_corners=True) on the table seen as a one-row image, in float32 or float64."""
import torch
import torch.nn.functional as F
from torch import nn


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d):
        super().__init__()
        self.max_len = int(max_len)
        self.weight = nn.Parameter(torch.empty(self.max_len, d).normal_(0.0, 0.02))

    def forward(self, x, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(x.size(-2), device=self.weight.device)
        position_ids = position_ids.to(self.weight.device)
        outside = torch.where((position_ids.reshape(-1) < 0) | (position_ids.reshape(-1) >= self.max_len))[0]
        if outside.numel():
            raise ValueError(f"position_ids hold values outside [0, max_len={self.max_len})")
        one_hot = F.one_hot(position_ids.long(), self.max_len).to(self.weight.dtype)
        rows = (one_hot @ self.weight).to(x.device)
        if x.dtype in (torch.float16, torch.bfloat16):
            return (x.float() + rows.float()).to(x.dtype)
        return x + rows.to(x.dtype)


def resize_position_table(table, new_len):
    if table.shape[0] < 2:
        raise ValueError(f"table has {table.shape[0]} rows, fewer than 2")
    if new_len < 2:
        raise ValueError(f"new_len must be 2 or more (got {new_len})")
    work = torch.float64 if table.dtype == torch.float64 else torch.float32
    image = table.to(work).t().reshape(1, table.shape[1], 1, table.shape[0])       # N, C, H=1, W=old_len
    xs = torch.linspace(-1.0, 1.0, new_len, dtype=work, device=table.device)
    grid = torch.stack((xs, torch.zeros_like(xs)), dim=-1).reshape(1, 1, new_len, 2)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(table.shape[1], new_len).t().contiguous().to(table.dtype)
