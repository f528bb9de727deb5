"""torchtune's Llama 3.1 scaling: ``Llama3ScaledRoPE(dim, max_seq_len, base, scale_factor, low_freq_factor,
high_freq_factor, old_context_len)``, a RotaryPositionalEmbeddings whose frequencies are scaled."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call, ClassCall
from course.grading.conventions.torchtune import CANNOT, TITLE



def provides(defined: set) -> tuple[dict, dict]:
    return {"llama3_inv_freq": "the frequencies (theta) of your Llama3ScaledRoPE"}, {}


CONVENTION = Convention(
    key="torchtune_scaling",
    section="scaling",
    title=TITLE,
    signatures={"Llama3ScaledRoPE": ClassCall(
        Call((1,), ("base", "scale_factor", "low_freq_factor", "high_freq_factor", "old_context_len")),
        Call((1,), ("input_pos",)))},
    provides=provides,
    cannot=dict(CANNOT),
)
