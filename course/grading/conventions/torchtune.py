"""torchtune style: ``RotaryPositionalEmbeddings(dim, max_seq_len=4096, base=10_000)`` called as
``forward(x, *, input_pos=None)`` on ``(B, T, H, D)``, pairs (2k, 2k+1), a cache of ``max_seq_len``
rows (``build_rope_cache(max_seq_len)`` rebuilds it longer)."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall

TITLE = "the torchtune convention"
CANNOT = {"argument_checks": "argument checks (its modules do not validate their arguments)"}


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your RotaryPositionalEmbeddings(d, max_seq_len, base) with input_pos = the positions",
        "rope_inv_freq": "the frequencies (theta) of your RotaryPositionalEmbeddings(d, base=base)",
        "RotaryEmbedding": ("your RotaryPositionalEmbeddings applied to q and to k (its cache rebuilt longer "
                            "when needed)"),
    }, {}


CONVENTION = Convention(
    key="torchtune",
    section="rope",
    title=TITLE,
    signatures={"RotaryPositionalEmbeddings": ClassCall(Call((1,), ("max_seq_len", "base")),
                                                        Call((1,), ("input_pos",)))},
    provides=provides,
    cannot={
        "half_split": "half-split pairs (it pairs features (2k, 2k+1))",
        "rotary_dim": "partial rotary (it rotates every feature)",
        "fractional_positions": "fractional positions (input_pos are rows of its cache)",
        **CANNOT,
    },
)
