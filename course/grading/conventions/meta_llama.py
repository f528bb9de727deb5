"""Meta's Llama style: ``precompute_freqs_cis(dim, end, theta)`` (a complex table, one row per
position) and ``apply_rotary_emb(xq, xk, freqs_cis)`` on ``(B, T, H, D)`` with interleaved pairs."""
from course.grading.conventions import Convention

SOURCE = '''
def _course_meta_rotate(x, positions, base):
    """x through apply_rotary_emb as (1, tokens, 1, D), each token with its row of freqs_cis"""
    pos = _course_whole(_course_positions(x, positions), "freqs_cis").reshape(-1)
    end = int(pos.max()) + 1 if pos.numel() else 1
    freqs_cis = precompute_freqs_cis(x.shape[-1], end, base).to(x.device)[pos]
    tokens = x.reshape(1, -1, 1, x.shape[-1])
    return apply_rotary_emb(tokens, tokens, freqs_cis)[0].reshape(x.shape)


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    return _course_rope(x, rotary_dim, interleaved, True, lambda y: _course_meta_rotate(y, positions, base))


def rope_inv_freq(d, base=10000.0):
    return precompute_freqs_cis(d, 2, base)[1].angle()
'''


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your apply_rotary_emb with rows of your precompute_freqs_cis",
        "rope_inv_freq": "the angles of row 1 (position 1) of your precompute_freqs_cis",
    }, {"RotaryEmbedding": "Meta's code has no rotary module (freqs_cis is a table the model keeps)"}


CONVENTION = Convention(
    key="meta",
    section="rope",
    title="Meta's Llama convention",
    names=("precompute_freqs_cis", "apply_rotary_emb"),
    provides=provides,
    cannot={
        "half_split": "half-split pairs (apply_rotary_emb pairs features (2k, 2k+1))",
        "rotary_dim": "partial rotary (apply_rotary_emb rotates every feature it is given)",
        "fractional_positions": "fractional positions (freqs_cis has one row per whole position)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
    source=SOURCE,
)
