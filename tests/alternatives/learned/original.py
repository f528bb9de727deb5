"""A correct learned table written another way: a property over nn.Embedding, F.embedding,
F.interpolate(align_corners=True)."""
import torch
import torch.nn.functional as F
from torch import nn


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d)
        self.embedding.weight.data.normal_(mean=0.0, std=0.02)

    @property
    def weight(self):
        return self.embedding.weight

    def forward(self, x, position_ids=None):
        seq_len = x.size(-2)
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=x.device)
        if position_ids.numel() > 0:
            if bool((position_ids < 0).any()) or bool((position_ids >= self.max_len).any()):
                raise ValueError(f"position ids must be in [0, {self.max_len}) (max_len)")
        rows = F.embedding(position_ids.to(self.weight.device), self.weight)
        return (x.float() + rows.float()).to(x.dtype) if x.dtype != torch.float64 else x + rows.double()


def resize_position_table(table, new_len):
    if table.shape[0] < 2:
        raise ValueError("table must have at least two rows")
    if new_len < 2:
        raise ValueError("new_len must be at least two")
    wide = torch.float64 if table.dtype == torch.float64 else torch.float32
    out = F.interpolate(table.to(wide).t().unsqueeze(0), size=new_len, mode="linear", align_corners=True)
    return out.squeeze(0).t().contiguous().to(table.dtype)
