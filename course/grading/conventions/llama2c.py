"""llama2.c's style: Meta's names with real tables, ``precompute_freqs_cis(dim, end, theta)`` returning
``(freqs_cos, freqs_sin)`` and ``apply_rotary_emb(xq, xk, freqs_cos, freqs_sin)`` on ``(B, T, H, D)`` with
interleaved pairs. Told from Meta's (3 arguments) and gpt-fast's (2) by apply_rotary_emb's 4 arguments."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your apply_rotary_emb with rows of your precompute_freqs_cis's cos and sin tables",
        "rope_inv_freq": "the angles of row 1 (position 1) of your precompute_freqs_cis's tables",
    }, {"RotaryEmbedding": "llama2.c has no rotary module (the model keeps freqs_cos and freqs_sin)"}


CONVENTION = Convention(
    key="llama2c",
    section="rope",
    title="llama2.c's convention",
    signatures={"precompute_freqs_cis": Call((3,)), "apply_rotary_emb": Call((4,))},
    provides=provides,
    cannot={
        "half_split": "half-split pairs (apply_rotary_emb pairs features (2k, 2k+1))",
        "rotary_dim": "partial rotary (apply_rotary_emb rotates every feature it is given)",
        "fractional_positions": "fractional positions (its tables have one row per whole position)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
)
