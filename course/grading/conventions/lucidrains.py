"""lucidrains' rotary-embedding-torch: ``RotaryEmbedding(dim, ..., theta=10000, ..., interpolate_factor=1.,
theta_rescale_factor=1., ...)`` whose ``forward(t, seq_len=None, offset=0)`` returns angles (each
repeated for its pair (2k, 2k+1)), with ``rotate_queries_with_cached_keys``, and ``apply_rotary_emb(freqs,
t, start_index=0, ...)``. Its class is named like the course's RotaryEmbedding: it is told apart by
its constructor's ``theta`` and its ``forward(t, seq_len=, offset=)``, which the course's cannot take,
and then graded through this convention, never as the course's class."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall

SIGNATURES = {"RotaryEmbedding": ClassCall(Call((1,), ("theta",)), Call((1,), ("seq_len", "offset"))),
              "apply_rotary_emb": Call((2,), ("start_index",))}
TITLE = "the rotary-embedding-torch convention"
CANNOT = {"argument_checks": "argument checks (its functions do not validate their arguments)"}


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your apply_rotary_emb with the angles of your RotaryEmbedding(rotary_dim, theta=base)",
        "rope_inv_freq": "the freqs of your RotaryEmbedding(d, theta=base)",
        "RotaryEmbedding": ("your RotaryEmbedding: rotate_queries_with_cached_keys for consecutive positions, "
                            "apply_rotary_emb with its angles for others"),
    }, {}


CONVENTION = Convention(
    key="lucidrains",
    section="rope",
    title=TITLE,
    signatures=SIGNATURES,
    provides=provides,
    cannot={"half_split": "half-split pairs (its rotate_half pairs features (2k, 2k+1))", **CANNOT},
)
