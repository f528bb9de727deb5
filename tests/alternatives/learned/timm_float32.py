"""A learned table written like timm's vision transformers: the parameter is registered as
`pos_embed` (initialised with nn.init.trunc_normal_(std=0.02), whose default cut at +-2 is
100 standard deviations away, so the draw is normal) and `weight` is a property returning
it; the forward adds the rows in float32 and casts back to x's dtype; resizing follows
timm's resample_abs_pos_embed: cast to float32 ("interpolate needs float32"),
F.interpolate(mode="linear", align_corners=True), cast back to the original dtype. Float64
inputs are therefore computed at float32 accuracy, which the contract allows."""
import torch
import torch.nn.functional as F
from torch import nn


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d):
        super().__init__()
        self.max_len = max_len
        self.pos_embed = nn.Parameter(torch.zeros(max_len, d))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    @property
    def weight(self):
        return self.pos_embed

    def forward(self, x, position_ids=None):
        if position_ids is None:
            if x.shape[-2] > self.max_len:
                raise ValueError(f"input length {x.shape[-2]} exceeds max_len {self.max_len}")
            rows = self.pos_embed[: x.shape[-2]]
        else:
            if position_ids.numel() and bool(torch.any((position_ids < 0) | (position_ids >= self.max_len))):
                raise ValueError(f"position_ids must be within [0, max_len={self.max_len})")
            rows = self.pos_embed[position_ids.to(self.pos_embed.device)]
        return (x.float() + rows.float().to(x.device)).type_as(x)


def resize_position_table(table, new_len):
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError(f"table must be (old_len >= 2, d), got {tuple(table.shape)}")
    if new_len < 2:
        raise ValueError(f"new_len must be >= 2, got {new_len}")
    orig_dtype = table.dtype
    posemb = table.float()                                   # interpolate needs float32
    posemb = posemb.t().unsqueeze(0)                          # (1, d, old_len)
    posemb = F.interpolate(posemb, size=new_len, mode="linear", align_corners=True)
    return posemb.squeeze(0).t().contiguous().to(orig_dtype)
