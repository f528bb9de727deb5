"""Meta's llama-models (Llama 3.1) style: Meta's ``precompute_freqs_cis(dim, end, theta, use_scaled=False)``
and ``apply_rotary_emb(xq, xk, freqs_cis)`` (graded as Meta's convention grades them), and Llama 3.1's
``apply_scaling(freqs)``, whose parameters are fixed inside (factor 8, 8192 tokens, low 1, high 4): the
scaling section's ``llama3_inv_freq`` with those defaults only. ``use_scaled`` tells it from Meta's Llama 2
code; a one-argument ``apply_scaling`` alone says little, so the scaling declaration asks for both."""
from course.grading.conventions import Convention
from course.grading.conventions.meta_llama import CONVENTION as META
from course.grading.conventions.signatures import Call

TITLE = "Meta's llama-models convention"
PRECOMPUTE = Call((3,), keywords=("use_scaled",))
FIXED = "Llama 3.1's scaling with other parameters than factor=8, original_max_len=8192, low 1, high 4 " \
        "(apply_scaling has them fixed inside)"

CONVENTION = Convention(
    key="llama_models",
    section="rope",
    title=TITLE,
    signatures={"precompute_freqs_cis": PRECOMPUTE, "apply_rotary_emb": Call((3,))},
    provides=META.provides,
    cannot=META.cannot,
)


def provides_scaling(defined: set) -> tuple[dict, dict]:
    return {"llama3_inv_freq": "your apply_scaling of base^(-2k/d), with Llama 3.1's parameters only"}, {}


SCALING = Convention(
    key="llama_models",
    section="scaling",
    title=TITLE,
    signatures={"precompute_freqs_cis": PRECOMPUTE, "apply_scaling": Call((1,))},
    provides=provides_scaling,
    cannot={"scaling_parameters": FIXED,
            "argument_checks": "argument checks (its functions do not validate their arguments)"},
)
