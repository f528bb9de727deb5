"""BLOOM's style (transformers' models/bloom): ``build_alibi_tensor(attention_mask, num_heads,
dtype)`` returns ``(batch * num_heads, 1, seq_len)`` holding ``slope * key position``, which the
model adds to the scores; with the causal mask, softmax makes it equal to ``-slope * |i - j|``."""
from course.grading.conventions import Convention

SOURCE = '''
def alibi_slopes(n_heads):
    alibi = build_alibi_tensor(_course_torch.ones(1, 2, dtype=_course_torch.long), n_heads, _course_torch.float32)
    return alibi[:, 0, 1] - alibi[:, 0, 0]


def alibi_attention(q, k, v, causal=True):
    *batch, heads, t_q, d = q.shape
    t_k = k.shape[-2]
    mask = _course_torch.ones(_course_math.prod(batch), t_k, dtype=_course_torch.long, device=q.device)
    alibi = build_alibi_tensor(mask, heads, q.dtype).reshape(*batch, heads, 1, t_k)
    scores = q.float() @ k.float().transpose(-1, -2) / _course_math.sqrt(d) + alibi.float()
    if causal:
        k_pos = _course_torch.arange(t_k, device=q.device)
        scores = scores.masked_fill(k_pos > k_pos[t_k - t_q:, None], float("-inf"))
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)
'''


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "alibi_slopes": "the step per key position of your build_alibi_tensor",
        "alibi_attention": "attention (scaled scores, causal mask, softmax) with your build_alibi_tensor added",
    }, {"alibi_bias": "build_alibi_tensor cannot express a bias for arbitrary query and key positions"}


CONVENTION = Convention(
    key="bloom",
    section="alibi",
    title="BLOOM's convention",
    names=("build_alibi_tensor",),
    provides=provides,
    cannot={
        "bidirectional": ("attention without the causal mask (slope * key position equals -slope * |i - j| "
                          "only up to a constant per query when no key comes after the query)"),
        "argument_checks": "argument checks (the attention around build_alibi_tensor is the grader's)",
    },
    source=SOURCE,
)
