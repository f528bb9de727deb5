"""lucidrains' x-transformers style: ``AlibiPositionalBias(heads, total_heads)`` with a ``slopes``
buffer ``(heads, 1, 1)``, ``forward(i, j)`` (the bias of i queries at the end of j keys, cached
in the buffer ``bias``) and ``forward_custom_pos(pos_i, pos_j)``. A module built for one call is
moved to the input's device, as a model moves its modules."""
import torch

from course.adapting import attention_with_bias


def adapt(found: dict) -> dict:
    module_class = found["AlibiPositionalBias"]

    def alibi_slopes(n_heads):
        return module_class(n_heads, n_heads).slopes.reshape(-1)

    def alibi_bias(slopes, q_pos, k_pos):
        """the given slopes set as the module's buffer (in their dtype: its constructor would make a
        float32 tensor of a list)"""
        module = module_class(len(slopes), len(slopes)).to(slopes.device)
        module.slopes = slopes.reshape(-1, 1, 1)
        return module.forward_custom_pos(torch.as_tensor(q_pos), torch.as_tensor(k_pos))

    def alibi_attention(q, k, v, causal=True):
        """the bias of the whole context made first (as after a prompt), then the last T_q queries'
        rows asked: what x-transformers' cache gives back in decoding"""
        heads, t_q, t_k = q.shape[-3], q.shape[-2], k.shape[-2]
        module = module_class(heads, heads).to(q.device)
        module(t_k, t_k)
        return attention_with_bias(q, k, v, module(t_q, t_k), causal)

    return {"alibi_slopes": alibi_slopes, "alibi_bias": alibi_bias, "alibi_attention": alibi_attention}
