"""GPT-J style (transformers' models/gptj): ``create_sinusoidal_positions(num_pos, dim)`` (a [sin | cos]
table, base 10000), ``rotate_every_two(x)`` and ``apply_rotary_pos_emb(tensor, sin, cos)`` (sin first)
on ``(B, T, H, D)``, pairs (2k, 2k+1). Same name as Hugging Face's ``apply_rotary_pos_emb``, which
takes ``(q, k, cos, sin, ...)``: the three-argument call tells them apart."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your apply_rotary_pos_emb with rows of your create_sinusoidal_positions",
        "rope_inv_freq": "the angles of row 1 (position 1) of your create_sinusoidal_positions",
    }, {"RotaryEmbedding": "GPT-J's code has no rotary module (the attention keeps the table)"}


CONVENTION = Convention(
    key="gptj",
    section="rope",
    title="the GPT-J convention",
    signatures={"create_sinusoidal_positions": Call((2,)), "rotate_every_two": Call((1,)),
                "apply_rotary_pos_emb": Call((3,))},
    provides=provides,
    cannot={
        "half_split": "half-split pairs (rotate_every_two pairs features (2k, 2k+1))",
        "fractional_positions": "fractional positions (the table has one row per whole position)",
        "rope_base": "another base than 10000 (create_sinusoidal_positions fixes it)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
)
