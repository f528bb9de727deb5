"""transformers' GPT-NeoX style (5.x): ``GPTNeoXRotaryEmbedding(config)`` whose ``forward(x, position_ids)``
returns cos and sin for the first ``int(head_size * partial_rotary_factor)`` features, and
``apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)`` rotating those features (half-split over that
width), passing the rest. Before the Hugging Face convention: its functions fit that one's calls too,
which would grade them without the partial rotary they express."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": ("your apply_rotary_pos_emb with cos and sin from your GPTNeoXRotaryEmbedding "
                       "(partial_rotary_factor = rotary_dim / d)"),
        "rope_inv_freq": "the angles of your GPTNeoXRotaryEmbedding's cos and sin at position 1",
        "RotaryEmbedding": "your GPTNeoXRotaryEmbedding with apply_rotary_pos_emb",
    }, {}


CONVENTION = Convention(
    key="gpt_neox",
    section="rope",
    title="the GPT-NeoX convention",
    signatures={"GPTNeoXRotaryEmbedding": ClassCall(Call((1,)), Call((2,))), "rotate_half": Call((1,)),
                "apply_rotary_pos_emb": Call((4,))},
    provides=provides,
    cannot={
        "interleaved": "interleaved pairs (rotate_half pairs feature k with k + r/2)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
)
