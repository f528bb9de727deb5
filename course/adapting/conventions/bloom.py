"""BLOOM's style: ``build_alibi_tensor(attention_mask, num_heads, dtype)`` returns ``(batch * num_heads,
1, seq_len)`` holding ``slope * key position``; with the causal mask, softmax makes it equal to
``-slope * |i - j|``."""
import math

import torch

from course.adapting import attention_with_bias


def adapt(found: dict) -> dict:
    build_alibi_tensor = found["build_alibi_tensor"]

    def alibi_slopes(n_heads):
        alibi = build_alibi_tensor(torch.ones(1, 2, dtype=torch.long), n_heads, torch.float32)
        return alibi[:, 0, 1] - alibi[:, 0, 0]

    def alibi_attention(q, k, v, causal=True):
        *batch, heads, _, _ = q.shape
        t_k = k.shape[-2]
        mask = torch.ones(math.prod(batch), t_k, dtype=torch.long, device=q.device)
        bias = build_alibi_tensor(mask, heads, q.dtype).reshape(*batch, heads, 1, t_k)
        return attention_with_bias(q, k, v, bias, causal)

    return {"alibi_slopes": alibi_slopes, "alibi_attention": alibi_attention}
