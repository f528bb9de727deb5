"""MosaicML's style (llm-foundry, MPT): ``gen_slopes(n_heads, alibi_bias_max=8, ...)`` and
``build_alibi_bias(n_heads, seq_len, full=False, alibi_bias_max=8, device=None, dtype=None)``,
a ``(1, H, 1, T)`` bias (``slope * (j - (T-1))``, for causal attention) or, ``full``, a
``(1, H, T, T)`` one (``-slope * |i - j|``) over positions 0..T-1. It takes no slopes and no
positions: ``alibi_bias`` is read one head at a time, from a one-head bias whose slope
``2^-alibi_bias_max`` is the slope asked, at rows and columns of the positions asked."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "alibi_slopes": "your gen_slopes(n_heads, 8), flattened",
        "alibi_bias": ("for each head, your build_alibi_bias(1, T, full=True, alibi_bias_max=-log2(slope)) "
                       "(one head of that slope), read at the positions asked"),
        "alibi_attention": ("attention (scaled scores, causal mask, softmax) with your build_alibi_bias(H, T_k, "
                            "full=not causal) added, rows of the last T_q queries"),
    }, {}


CONVENTION = Convention(
    key="mpt",
    section="alibi",
    title="MosaicML's MPT convention",
    signatures={"gen_slopes": Call((2,)),
                "build_alibi_bias": Call((2,), keywords=("full", "alibi_bias_max", "device", "dtype"))},
    provides=provides,
    cannot={"argument_checks": "argument checks (gen_slopes and build_alibi_bias do not validate their arguments)"},
)
