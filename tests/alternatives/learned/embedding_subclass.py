"""The learned table as a subclass of nn.Embedding itself (its `weight` parameter and
F.embedding lookup are inherited; only the init std and the forward signature change).
Resizing is NumPy's np.interp, one feature column at a time, in float64."""
import numpy as np
import torch
from torch import nn


class LearnedPositionalEmbedding(nn.Embedding):
    def __init__(self, max_len, d):
        super().__init__(max_len, d)
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x, position_ids=None):
        max_len = self.num_embeddings
        if position_ids is None:
            t = x.shape[-2]
            if t > max_len:
                raise ValueError(f"max_len={max_len} is too short for {t} positions")
            position_ids = torch.arange(t, device=self.weight.device)
        ids = position_ids.long()
        if ids.numel() and not (0 <= int(ids.min()) and int(ids.max()) < max_len):
            raise ValueError(f"an id falls outside the table of max_len={max_len} rows")
        rows = super().forward(ids.to(self.weight.device)).to(x.device)
        if x.dtype == torch.float64:
            return x + rows.double()
        return (x.float() + rows.float()).to(x.dtype)


def resize_position_table(table, new_len):
    old_len = table.shape[0]
    if old_len < 2 or new_len < 2:
        raise ValueError(f"need at least 2 rows in and out: table has {old_len}, new_len={new_len}")
    src = table.detach().cpu().to(torch.float64).numpy()
    at = np.arange(new_len, dtype=np.float64) * (old_len - 1) / (new_len - 1)
    grid = np.arange(old_len, dtype=np.float64)
    out = np.stack([np.interp(at, grid, src[:, j]) for j in range(src.shape[1])], axis=1)
    return torch.from_numpy(out.reshape(new_len, *src.shape[1:])).to(device=table.device, dtype=table.dtype)
