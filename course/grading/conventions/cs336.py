"""Stanford CS336 (assignment 1) style: ``RotaryPositionalEmbedding(theta, d_k, max_seq_len,
device=None)`` with ``forward(x, token_positions)``, adjacent (interleaved) pairs, a table of
``max_seq_len`` positions fixed when the module is built."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your RotaryPositionalEmbedding(theta, d_k, max_seq_len) applied to x and token_positions",
        "rope_inv_freq": "the angles your RotaryPositionalEmbedding turns pairs (1, 0) by at position 1",
        "RotaryEmbedding": "your RotaryPositionalEmbedding, applied to q and to k",
    }, {}


CONVENTION = Convention(
    key="cs336",
    section="rope",
    title="the Stanford CS336 convention",
    signatures={"RotaryPositionalEmbedding": ClassCall(Call((3,), ("device",)), Call((2,)))},
    provides=provides,
    cannot={
        "half_split": "half-split pairs (RotaryPositionalEmbedding pairs adjacent features (2k, 2k+1))",
        "rotary_dim": "partial rotary (RotaryPositionalEmbedding rotates all d_k features)",
        "fractional_positions": "fractional positions (token_positions are integers)",
        "cache_growth": "growing past max_seq_len (its table is fixed when it is built)",
        "argument_checks": "argument checks (the assignment does not ask for them)",
    },
)
