"""An adapter that raises: it names a function the graded code does not define."""


def rope_inv_freq(d, base=10000.0):
    return rope_frequencies(d, theta=base)


apply_rope = rotate_everything
