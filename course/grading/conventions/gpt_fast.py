"""gpt-fast's style: Meta's names with a real table, ``precompute_freqs_cis(seq_len, n_elem, base[,
dtype, rope_scaling])`` of shape ``(seq_len, n_elem/2, 2)`` (cos, sin) and ``apply_rotary_emb(x,
freqs_cis)`` on ``(B, T, H, D)``, interleaved pairs: told from Meta's (3 arguments) and llama2.c's (4) by
apply_rotary_emb's 2. Llama 3.1's scaling is ``apply_rope_scaling(freqs, rope_scaling)`` with a dict of
factor, low_freq_factor, high_freq_factor, original_max_position_embeddings (a second declaration, of
the scaling section)."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call

TITLE = "gpt-fast's convention"
ARGUMENT_CHECKS = "argument checks (its functions do not validate their arguments)"


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your apply_rotary_emb with rows of your precompute_freqs_cis (float32)",
        "rope_inv_freq": "the angles of row 1 (position 1) of your precompute_freqs_cis (float32)",
    }, {"RotaryEmbedding": "gpt-fast has no rotary module (freqs_cis is a cache the model keeps)"}


def provides_scaling(defined: set) -> tuple[dict, dict]:
    return {"llama3_inv_freq": "your apply_rope_scaling of base^(-2k/d), its parameters in the rope_scaling dict"}, {}


CONVENTION = Convention(
    key="gpt_fast",
    section="rope",
    title=TITLE,
    signatures={"precompute_freqs_cis": Call((3,)), "apply_rotary_emb": Call((2,))},
    provides=provides,
    cannot={
        "half_split": "half-split pairs (apply_rotary_emb pairs features (2k, 2k+1))",
        "rotary_dim": "partial rotary (apply_rotary_emb rotates every feature it is given)",
        "fractional_positions": "fractional positions (freqs_cis has one row per whole position)",
        "argument_checks": ARGUMENT_CHECKS,
    },
)

SCALING = Convention(
    key="gpt_fast",
    section="scaling",
    title=TITLE,
    signatures={"apply_rope_scaling": Call((2,))},
    provides=provides_scaling,
    cannot={"argument_checks": ARGUMENT_CHECKS},
)
