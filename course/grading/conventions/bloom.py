"""BLOOM's style (transformers' models/bloom): ``build_alibi_tensor(attention_mask, num_heads,
dtype)`` returns ``(batch * num_heads, 1, seq_len)`` holding ``slope * key position``, which the
model adds to the scores; with the causal mask, softmax makes it equal to ``-slope * |i - j|``."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "alibi_slopes": "the step per key position of your build_alibi_tensor",
        "alibi_attention": "attention (scaled scores, causal mask, softmax) with your build_alibi_tensor added",
    }, {"alibi_bias": "build_alibi_tensor cannot express a bias for arbitrary query and key positions"}


CONVENTION = Convention(
    key="bloom",
    section="alibi",
    title="BLOOM's convention",
    signatures={"build_alibi_tensor": Call((3,))},
    provides=provides,
    cannot={
        "bidirectional": ("attention without the causal mask (slope * key position equals -slope * |i - j| "
                          "only up to a constant per query when no key comes after the query)"),
        "argument_checks": "argument checks (the attention around build_alibi_tensor is the grader's)",
    },
)
