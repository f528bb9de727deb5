"""lucidrains' x-transformers style ALiBi: an AlibiPositionalBias module; forward(i, j) gives the (H, i, j) bias of
i queries aligned to the end of j keys, forward_custom_pos(pos_i, pos_j) the bias of given positions.

Source: lucidrains/x-transformers at 9252ed7838021ee61e6c5be0930b3a9a88efdf06, x_transformers/x_transformers.py
(AlibiPositionalBias; written here without einx/einops).

Signatures: AlibiPositionalBias(heads, total_heads=None, slopes=None, **kwargs); staticmethod _get_slopes(heads)
-> list of floats (the ALiBi paper's rule); buffer `slopes` (heads, 1, 1) float32;
forward(i, j) -> (total_heads, i, j), cached in the buffer `bias` and sliced [-i:, -j:] when large enough;
forward_custom_pos(pos_i, pos_j=None) -> (total_heads, T_i, T_j) (a leading batch axis for 2-D positions).
Bias: -slope * |pos_j - pos_i|, symmetric (x-transformers applies the causal mask apart); heads past `heads`
(up to total_heads) get zero bias.

Course exercises: alibi.alibi_slopes(n) = tensor(AlibiPositionalBias._get_slopes(n));
alibi.alibi_bias(slopes, q_pos, k_pos) = AlibiPositionalBias(H, slopes=slopes.tolist()).forward_custom_pos(q_pos,
k_pos); alibi.alibi_attention(q, k, v, causal) = softmax(q k^T / sqrt(d) + AlibiPositionalBias(H)(T_q, T_k),
causal mask if causal) v. Expresses the bidirectional case. Cannot express: argument checks; the bias follows the
slopes' dtype (float32), not a float64 slopes tensor given to alibi_bias (slopes are rebuilt from a list).
"""
import math

import torch
from torch import nn


class AlibiPositionalBias(nn.Module):
    def __init__(self, heads, total_heads=None, slopes=None, **kwargs):
        super().__init__()
        self.heads = heads
        self.total_heads = heads if total_heads is None else total_heads
        slopes = torch.Tensor(self._get_slopes(heads) if slopes is None else slopes)
        self.register_buffer('slopes', slopes.view(-1, 1, 1), persistent=False)
        self.register_buffer('bias', None, persistent=False)

    @property
    def device(self):
        return next(self.buffers()).device

    @staticmethod
    def _get_slopes(heads):
        def power_of_two(n):
            start = 2 ** (-2 ** -(math.log2(n) - 3))
            return [start ** (i + 1) for i in range(n)]

        if math.log2(heads).is_integer():
            return power_of_two(heads)
        closest = 2 ** math.floor(math.log2(heads))
        return power_of_two(closest) + power_of_two(2 * closest)[0::2][: heads - closest]

    def _with_unbiased_heads(self, bias):
        missing = self.total_heads - bias.shape[-3]
        padding = bias.new_zeros(*bias.shape[:-3], missing, *bias.shape[-2:])
        return torch.cat((bias, padding), dim=-3)

    def forward_custom_pos(self, pos_i, pos_j=None):
        pos_j = pos_i if pos_j is None else pos_j
        bias = -(pos_j[..., None, :] - pos_i[..., :, None]).abs()
        if bias.ndim == 3:
            bias = bias.unsqueeze(1)
        return self._with_unbiased_heads(bias * self.slopes)

    def forward(self, i, j):
        if self.bias is not None and self.bias.shape[-1] >= j and self.bias.shape[-2] >= i:
            return self.bias[..., -i:, -j:]
        queries = torch.arange(j - i, j, device=self.device)
        keys = torch.arange(j, device=self.device)
        bias = -(keys[None, None, :] - queries[None, :, None]).abs()
        self.register_buffer('bias', self._with_unbiased_heads(bias * self.slopes), persistent=False)
        return self.bias
