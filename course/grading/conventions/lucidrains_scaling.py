"""lucidrains' rotary-embedding-torch, its context scaling: ``RotaryEmbedding(dim, theta=,
interpolate_factor=)`` (position interpolation) and ``theta_rescale_factor`` (NTK-aware base)."""
from course.grading.conventions import Convention
from course.grading.conventions.lucidrains import CANNOT, SIGNATURES, TITLE



def provides(defined: set) -> tuple[dict, dict]:
    return {
        "linear_scaled_inv_freq": ("the angles at position 1 of your RotaryEmbedding(d, theta=base, "
                                   "interpolate_factor=factor)"),
        "ntk_scaled_base": ("the base implied by the freqs of your RotaryEmbedding(d, theta=base, "
                            "theta_rescale_factor=factor)"),
    }, {}


CONVENTION = Convention(
    key="lucidrains_scaling",
    section="scaling",
    title=TITLE,
    signatures=SIGNATURES,
    provides=provides,
    cannot=dict(CANNOT),
)
