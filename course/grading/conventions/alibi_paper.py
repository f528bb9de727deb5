"""The ALiBi paper's code (ofirpress/attention_with_linear_biases): ``get_slopes(n)`` returns the
slopes as a list."""
from course.grading.conventions import Convention
from course.grading.conventions.signatures import Call


def provides(defined: set) -> tuple[dict, dict]:
    return {"alibi_slopes": "your get_slopes, as a float32 tensor"}, {}


CONVENTION = Convention(
    key="alibi_paper",
    section="alibi",
    title="the ALiBi paper's convention",
    signatures={"get_slopes": Call((1,))},
    provides=provides,
    cannot={"argument_checks": "argument checks (get_slopes does not validate n)"},
)
