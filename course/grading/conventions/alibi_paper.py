"""The ALiBi paper's code (ofirpress/attention_with_linear_biases): ``get_slopes(n)`` returns the
slopes as a list."""
from course.grading.conventions import Convention

SOURCE = '''
def alibi_slopes(n_heads):
    return _course_torch.as_tensor(get_slopes(n_heads), dtype=_course_torch.float32)
'''


def provides(defined: set) -> tuple[dict, dict]:
    return {"alibi_slopes": "your get_slopes, as a float32 tensor"}, {}


CONVENTION = Convention(
    key="alibi_paper",
    section="alibi",
    title="the ALiBi paper's convention",
    names=("get_slopes",),
    provides=provides,
    cannot={"argument_checks": "argument checks (get_slopes does not validate n)"},
    source=SOURCE,
)
