"""Section 11, the bug zoo: the reference diagnosis.

This module is the single source of the solution cell in source_notebooks/11_bug_zoo:
`python -m course.build` copies the definition into its tagged cell. Each entry's comment
names the test that found the bug (tests/test_zoo.py runs each of them).
"""


def diagnosis():
    """The bug each specimen of course.zoo shows, as {letter: key of course.zoo.MENU}."""
    ### BEGIN SOLUTION
    return {
        "A": "wrong-rope-base",        # apply_rope = the reference with base 10000, not the claimed 500000
        "B": "none",                   # slopes = the reference alibi_slopes(12); the probe passes
        "C": "positions-restart-while-decoding",  # probe: cached decoding differs from the full pass
        "D": "t5-sign-flipped",        # relative_bias = the reference's buckets of query - key
        "E": "ntk-called-yarn",        # inv_freq = NTK-aware base scaling, not yarn_inv_freq
        "F": "half-precision-angles",  # probe: shift by 1000 changes the scores; off the float64 rotation
        "G": "none",                   # inv_freq = yarn_inv_freq, the attention factor too
        "H": "power-of-two-slopes",    # probe: slopes 2^(-8i/12)
        "I": "positions-count-padding",  # probe: left padding changes the real tokens' logits
        "J": "wrong-pairing",          # apply_rope = the reference with interleaved=True
        "K": "alibi-slopes-reversed",  # probe fails; slopes = alibi_slopes(8) reversed
        "L": "stale-dynamic-cache",    # a short input after a long one differs from a fresh model's
    }
    ### END SOLUTION
