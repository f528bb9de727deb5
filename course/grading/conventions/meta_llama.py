"""Meta's Llama style: ``precompute_freqs_cis(dim, end, theta)`` (a complex table, one row per
position) and ``apply_rotary_emb(xq, xk, freqs_cis)`` on ``(B, T, H, D)`` with interleaved pairs."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your apply_rotary_emb with rows of your precompute_freqs_cis",
        "rope_inv_freq": "the angles of row 1 (position 1) of your precompute_freqs_cis",
    }, {"RotaryEmbedding": "Meta's code has no rotary module (freqs_cis is a table the model keeps)"}


CONVENTION = Convention(
    key="meta_llama",
    section="rope",
    title="Meta's Llama convention",
    signatures={"precompute_freqs_cis": Call((3,)), "apply_rotary_emb": Call((3,))},
    provides=provides,
    cannot={
        "half_split": "half-split pairs (apply_rotary_emb pairs features (2k, 2k+1))",
        "rotary_dim": "partial rotary (apply_rotary_emb rotates every feature it is given)",
        "fractional_positions": "fractional positions (freqs_cis has one row per whole position)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
)
