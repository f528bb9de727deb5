"""transformers' RoPE initialisation functions (modeling_rope_utils): ``_compute_linear_scaling_rope_parameters``,
``_compute_dynamic_ntk_parameters``, ``_compute_yarn_parameters``, ``_compute_llama3_parameters``, each
``(config, device=None, seq_len=None, layer_type=None) -> (inv_freq, attention_factor)``, reading
the head size and a ``rope_parameters`` dict from a model config (transformers 4.x: ``rope_theta`` and
``rope_scaling``; the grader's config holds both). Any of the four is used; each grades its own exercise."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call

FUNCTIONS = {  # learner name -> (contract name, how it is made)
    "_compute_linear_scaling_rope_parameters": (
        "linear_scaled_inv_freq", "your _compute_linear_scaling_rope_parameters on a config of rope_type 'linear'"),
    "_compute_dynamic_ntk_parameters": (
        "dynamic_ntk_inv_freq", "your _compute_dynamic_ntk_parameters on a config of rope_type 'dynamic' "
        "(max_position_embeddings = original_max_len) at seq_len"),
    "_compute_yarn_parameters": (
        "yarn_inv_freq", "your _compute_yarn_parameters on a config of rope_type 'yarn' (inv_freq and attention "
        "factor)"),
    "_compute_llama3_parameters": (
        "llama3_inv_freq", "your _compute_llama3_parameters on a config of rope_type 'llama3'"),
}
# each is called with a config, and `seq_len=` for dynamic NTK
CALL = Call((1,), keywords=("seq_len",))


def provides(defined: set) -> tuple[dict, dict]:
    made = {contract: how for name, (contract, how) in FUNCTIONS.items() if name in defined}
    missing = {contract: f"you define no {name}" for name, (contract, _) in FUNCTIONS.items() if name not in defined}
    no_type = "transformers' rope types hold no static NTK base (only the 'dynamic' type, graded as such)"
    return made, {**missing, "ntk_scaled_base": no_type,
                  "rope_from_config": "reading whole configs needs every rope type, 'default' and 'longrope' included "
                                      "(the course's rope_from_config; these functions are one type each)"}


CONVENTION = Convention(
    key="hf_rope_init",
    section="scaling",
    title="transformers' rope initialisation functions",
    signatures={},
    optional=dict.fromkeys(FUNCTIONS, CALL),
    provides=provides,
    cannot={"argument_checks": "argument checks (the rope initialisation functions do not validate their config)"},
)
