"""T5 relative buckets and bias in the shape of Hugging Face's T5Attention: a module with a
static `_relative_position_bucket` (running total of bucket ids, torch.min against zeros,
torch.full_like caps) and a `compute_bias` that looks buckets up in an nn.Embedding whose
weight is the given table (F.embedding keeps the table's graph); the graded functions
delegate to it."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class T5RelativeBias(nn.Module):
    def __init__(self, table, bidirectional=True, max_distance=128):
        super().__init__()
        if table.dim() != 2:
            raise ValueError(f"table must be (num_buckets, n_heads), got {tuple(table.shape)}")
        self.table = table
        self.is_decoder = not bidirectional
        self.relative_attention_num_buckets = table.shape[0]
        self.relative_attention_max_distance = max_distance

    @staticmethod
    def _relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
        relative_buckets = 0
        if bidirectional:
            num_buckets //= 2
            relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
            relative_position = torch.abs(relative_position)
        else:
            relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
        max_exact = num_buckets // 2
        is_small = relative_position < max_exact
        relative_position_if_large = max_exact + (
            torch.log(relative_position.float() / max_exact)
            / math.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).to(torch.long)
        relative_position_if_large = torch.min(
            relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1)
        )
        relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
        return relative_buckets

    def compute_bias(self, q_pos, k_pos):
        relative_position = k_pos.long()[None, :] - q_pos.long()[:, None]
        buckets = self._relative_position_bucket(
            relative_position,
            bidirectional=not self.is_decoder,
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
        )
        values = F.embedding(buckets.to(self.table.device), self.table)  # (T_q, T_k, H)
        return values.permute([2, 0, 1])


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    side = num_buckets // 2 if bidirectional else num_buckets
    if side // 2 < 1:
        raise ValueError(f"num_buckets={num_buckets} leaves no exact buckets")
    if max_distance <= side // 2:
        raise ValueError(f"max_distance={max_distance} must exceed the exact range {side // 2}")
    rel = torch.as_tensor(relative_position).long()
    return T5RelativeBias._relative_position_bucket(rel, bidirectional, num_buckets, max_distance)


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError("q_pos and k_pos must be 1-D position vectors")
    return T5RelativeBias(table, bidirectional, max_distance).compute_bias(q_pos.to(table.device),
                                                                           k_pos.to(table.device))
