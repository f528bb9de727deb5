"""Wrong get_slopes: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("power_of_two_only", "alibi.alibi_slopes", '''
def get_slopes(n):
    start = 2 ** (-8 / n)
    return [start ** (i + 1) for i in range(n)]
''', mistake="power-of-two formula", key="alibi-power-of-two"),
    Bug("sorted", "alibi.alibi_slopes", '''
_right_get_slopes = get_slopes
def get_slopes(n):
    return sorted(_right_get_slopes(n), reverse=True)
''', mistake="sorted order", key="alibi-sorted"),
    Bug("odd_slopes_of_the_next_power", "alibi.alibi_slopes", '''
_right_get_slopes = get_slopes
def get_slopes(n):
    closest = 2 ** math.floor(math.log2(n))
    if closest == n:
        return _right_get_slopes(n)
    return _right_get_slopes(closest) + _right_get_slopes(2 * closest)[1::2][: n - closest]
''', mistake="follows the paper's rule for head counts that are not a power of two", key="alibi-extra-slopes"),
]
