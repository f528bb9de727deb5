"""A learned table configured by a dataclass: the module keeps its config, stores `weight`
as a plain nn.Parameter attribute, validates ids with .tolist() and Python ints, and looks
rows up with gather on an expanded index. Resizing is a float64 Python loop over the new
rows, each a lerp of its two neighbours."""
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TableConfig:
    max_len: int
    d: int
    init_std: float = 0.02

    def __post_init__(self):
        if self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")
        if self.d < 1:
            raise ValueError(f"d must be >= 1, got {self.d}")


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d):
        super().__init__()
        self.config = TableConfig(int(max_len), int(d))
        self.weight = nn.Parameter(torch.randn(self.config.max_len, self.config.d) * self.config.init_std)

    def forward(self, x, position_ids=None):
        cfg = self.config
        if position_ids is None:
            position_ids = torch.arange(x.shape[-2], device=self.weight.device)
        bad = [i for i in position_ids.reshape(-1).tolist() if not 0 <= i < cfg.max_len]
        if bad:
            raise ValueError(f"position id {bad[0]} is not in [0, max_len) = [0, {cfg.max_len})")
        flat = position_ids.reshape(-1, 1).to(self.weight.device).long().expand(-1, cfg.d)
        rows = torch.gather(self.weight, 0, flat).reshape(*position_ids.shape, cfg.d).to(x.device)
        wide = torch.promote_types(torch.promote_types(x.dtype, rows.dtype), torch.float32)
        return (x.to(wide) + rows.to(wide)).to(x.dtype)


def resize_position_table(table, new_len):
    if table.dim() < 1 or table.shape[0] < 2:
        raise ValueError("table: at least two rows are needed to interpolate")
    if new_len < 2:
        raise ValueError("new_len: at least two rows are needed")
    old_len = table.shape[0]
    src = table.to(torch.float64)
    rows = []
    for j in range(new_len):
        x = j * (old_len - 1) / (new_len - 1)
        lo = min(int(math.floor(x)), old_len - 2)
        frac = x - lo
        rows.append(src[lo] * (1.0 - frac) + src[lo + 1] * frac)
    return torch.stack(rows).to(table.dtype)
