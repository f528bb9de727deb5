"""lucidrains' x-transformers style: class ``AlibiPositionalBias(heads, total_heads=None, slopes=None,
**kwargs)`` with a ``slopes`` buffer ``(heads, 1, 1)``, ``forward(i, j)`` giving the ``(H, i, j)``
bias of i queries at the end of j keys (cached and sliced ``[-i:, -j:]``), and
``forward_custom_pos(pos_i, pos_j)``: ``-slope * |pos_j - pos_i|``, symmetric (the causal mask
is applied apart). Older versions take ``(heads, total_heads)``; ``forward(qk_dots)`` (older
still) does not fit."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "alibi_slopes": "the slopes buffer of your AlibiPositionalBias(n, n)",
        "alibi_bias": ("forward_custom_pos(q_pos, k_pos) of your AlibiPositionalBias(H, H) with its slopes "
                       "buffer set to the slopes given"),
        "alibi_attention": ("attention (scaled scores, causal mask, softmax) with your AlibiPositionalBias(H, H)"
                            "(T_q, T_k) added, read after it made the (T_k, T_k) bias of the whole context"),
    }, {}


CONVENTION = Convention(
    key="x_transformers",
    section="alibi",
    title="the x-transformers convention",
    signatures={"AlibiPositionalBias": ClassCall(Call((2,)), Call((2,)))},
    provides=provides,
    cannot={"argument_checks": "argument checks (AlibiPositionalBias does not validate its arguments)"},
)
