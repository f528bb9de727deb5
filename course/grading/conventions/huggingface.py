"""Hugging Face (transformers' Llama) style: ``rotate_half``, ``apply_rotary_pos_emb`` and,
optionally, a rotary module. Pairs are half-split. Two generations are read:

- transformers >= 4.38: ``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1)``
  takes cos and sin per token; the module's ``forward(x, position_ids)`` makes them (built from a
  config as in >= 4.45, or from ``(dim, max_position_embeddings, base)``);
- transformers 4.28-4.37: ``apply_rotary_pos_emb(q, k, cos, sin, position_ids[, unsqueeze_dim])``
  looks the tokens' rows up in whole cos and sin tables, which the module's ``forward(x,
  seq_len)`` returns (``(seq_len, dim)``, or ``(1, 1, seq_len, dim)`` before 4.34)."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall

MODULES = ("LlamaRotaryEmbedding", "MistralRotaryEmbedding", "Qwen2RotaryEmbedding", "GemmaRotaryEmbedding")
# built from a config or from (dim, max_position_embeddings=, base=); forward(x, position_ids) or (x, seq_len=)
MODULE_CALL = ClassCall(Call((1,)), Call((2,)))


def provides(defined: set) -> tuple[dict, dict]:
    module = next((m for m in MODULES if m in defined), None)
    if module is None:
        how = ("your apply_rotary_pos_emb with rotate_half (cos and sin made as transformers' default rotary "
               "module makes them: you define no rotary module)")
        why = f"you define no rotary module ({', '.join(MODULES)}) whose forward returns (cos, sin)"
        return {"apply_rope": how}, {"rope_inv_freq": why, "RotaryEmbedding": why}
    return {
        "apply_rope": f"your apply_rotary_pos_emb with rotate_half, cos and sin from your {module}",
        "rope_inv_freq": f"the angles of your {module}'s cos and sin at position 1",
        "RotaryEmbedding": f"your {module} with apply_rotary_pos_emb",
    }, {}


CONVENTION = Convention(
    key="huggingface",
    section="rope",
    title="the Hugging Face convention",
    signatures={"rotate_half": Call((1,)), "apply_rotary_pos_emb": Call((4, 5))},
    optional=dict.fromkeys(MODULES, MODULE_CALL),
    provides=provides,
    cannot={
        "interleaved": "interleaved pairs (rotate_half pairs feature k with k + d/2)",
        "rotary_dim": "partial rotary (apply_rotary_pos_emb rotates every feature it is given)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
)
