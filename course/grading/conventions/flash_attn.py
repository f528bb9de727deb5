"""flash-attn's pure-PyTorch reference: ``apply_rotary_emb_torch(x, cos, sin, interleaved=False)`` on
``(B, T, H, D)`` with cos and sin made by the caller, one column per pair; it rotates the first
``2 * cos.shape[-1]`` features, half-split or interleaved, and passes the rest through."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call

NO_FREQUENCIES = "flash-attn's reference is handed cos and sin by its caller: it computes no frequencies"


def provides(defined: set) -> tuple[dict, dict]:
    how = "your apply_rotary_emb_torch with cos and sin of the positions times base^(-2k/rotary_dim)"
    return {"apply_rope": how}, {
        "rope_inv_freq": NO_FREQUENCIES,
        "RotaryEmbedding": "flash-attn's pure-PyTorch reference has no rotary module (its own needs its CUDA kernel)",
    }


CONVENTION = Convention(
    key="flash_attn",
    section="rope",
    title="flash-attn's convention",
    signatures={"apply_rotary_emb_torch": Call((4,))},  # (x, cos, sin, interleaved)
    provides=provides,
    cannot={"argument_checks": "argument checks (its functions do not validate their arguments)"},
)
