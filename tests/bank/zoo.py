"""Wrong diagnoses of the bug zoo (notebook 11) that learners really give: the claim trusted
because the probe passed, a probe's hint taken at its word, two similar bugs swapped."""
from tests.bank import Bug, variant


def _said(letter, wrong, right):
    return variant("zoo", "diagnosis", (f'"{letter}": "{right}"', f'"{letter}": "{wrong}"'))


BUGS = [
    Bug("yarn_claim_trusted", "zoo.diagnosis", _said("E", "none", "ntk-called-yarn"),
        mistake="specimen E", key="misdiagnosed"),
    Bug("yarn_attention_factor_blamed", "zoo.diagnosis", _said("E", "missing-attention-factor", "ntk-called-yarn"),
        mistake="specimen E", key="misdiagnosed"),
    Bug("pairing_taken_for_direction", "zoo.diagnosis", _said("J", "rotation-direction", "wrong-pairing"),
        mistake="specimen J", key="misdiagnosed"),
    Bug("dynamic_shift_taken_for_half_precision", "zoo.diagnosis",
        _said("L", "half-precision-angles", "stale-dynamic-cache"), mistake="specimen L", key="misdiagnosed"),
    Bug("reversed_taken_for_power_of_two", "zoo.diagnosis", _said("K", "power-of-two-slopes", "alibi-slopes-reversed"),
        mistake="specimen K", key="misdiagnosed"),
    Bug("t5_sign_missed", "zoo.diagnosis", _said("D", "none", "t5-sign-flipped"), mistake="specimen D",
        key="misdiagnosed"),
    Bug("base_taken_for_pairing", "zoo.diagnosis", _said("A", "wrong-pairing", "wrong-rope-base"),
        mistake="specimen A", key="misdiagnosed"),
    Bug("restart_taken_for_padding", "zoo.diagnosis",
        _said("C", "positions-count-padding", "positions-restart-while-decoding"), mistake="specimen C",
        key="misdiagnosed"),
    Bug("healthy_alibi_accused", "zoo.diagnosis", _said("B", "power-of-two-slopes", "none"),
        mistake="specimen B", key="misdiagnosed"),
    Bug("off_the_menu", "zoo.diagnosis", _said("F", "fp16 angles", "half-precision-angles"),
        mistake="not a key of course.zoo.MENU"),
    Bug("specimen_left_out", "zoo.diagnosis", variant("zoo", "diagnosis", ('        "I": "positions-count-padding",  # probe: left padding changes the real tokens\' logits\n', "")),
        mistake="no entry for specimen 'I'"),
    Bug("not_a_dict", "zoo.diagnosis", '''
def diagnosis():
    return [("A", "wrong-rope-base"), ("B", "none")]
''', mistake="not a dict"),
]
