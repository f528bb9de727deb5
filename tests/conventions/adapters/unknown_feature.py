"""A working adapter whose NOT_APPLICABLE has a typo."""
NOT_APPLICABLE = {"interleavd": "typo", "argument_checks": "the model code does not validate its arguments"}


def rope_inv_freq(d, base=10000.0):
    return rope_frequencies(d, theta=base)
