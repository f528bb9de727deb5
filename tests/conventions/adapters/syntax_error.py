"""An adapter with a syntax error."""


def rope_inv_freq(d, base=10000.0:
    return rope_frequencies(d, theta=base)
