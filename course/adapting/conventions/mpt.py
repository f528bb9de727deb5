"""MosaicML's style (llm-foundry, MPT): ``gen_slopes(n_heads, alibi_bias_max)`` and
``build_alibi_bias(n_heads, seq_len, full=False, alibi_bias_max=8, device=None, dtype=None)``
over positions 0..T-1: ``(1, H, 1, T)`` holding ``slope * (j - (T-1))`` (equal to ``-slope *
|i - j|`` up to a constant per query under the causal mask), or, ``full``, ``(1, H, T, T)``."""
import math

import torch

from course.adapting import attention_with_bias, whole

ALIBI_BIAS_MAX = 8  # MPT's default, the ALiBi paper's slopes


def adapt(found: dict) -> dict:
    gen_slopes, build_alibi_bias = found["gen_slopes"], found["build_alibi_bias"]

    def alibi_slopes(n_heads):
        return gen_slopes(n_heads, ALIBI_BIAS_MAX).reshape(-1)  # (1, H, 1, 1) unless return_1d

    def alibi_bias(slopes, q_pos, k_pos):
        """With one head, gen_slopes gives the slope 2^-alibi_bias_max: any positive slope is one
        head's; |i - j| depends on differences only, so positions are shifted to start at row 0."""
        q_pos, k_pos = (whole(torch.as_tensor(p), "build_alibi_bias") for p in (q_pos, k_pos))
        every = torch.cat((q_pos.reshape(-1), k_pos.reshape(-1)))
        low, length = int(every.min()), int(every.max() - every.min()) + 1
        rows, columns = (q_pos - low)[:, None], (k_pos - low)[None, :]
        heads = []
        for slope in slopes.tolist():
            if not slope > 0:
                raise ValueError(f"build_alibi_bias makes positive slopes 2^-alibi_bias_max only, got {slope}")
            bias = build_alibi_bias(1, length, full=True, alibi_bias_max=-math.log2(slope), device=slopes.device,
                                    dtype=slopes.dtype)
            heads.append(bias[0, 0][rows, columns])
        return torch.stack(heads)

    def alibi_attention(q, k, v, causal=True):
        t_q, t_k = q.shape[-2], k.shape[-2]
        bias = build_alibi_bias(q.shape[-3], t_k, full=not causal, device=q.device, dtype=torch.float32)[0]
        return attention_with_bias(q, k, v, bias[..., -t_q:, :], causal)  # (H, 1, T_k) when causal

    return {"alibi_slopes": alibi_slopes, "alibi_bias": alibi_bias, "alibi_attention": alibi_attention}
