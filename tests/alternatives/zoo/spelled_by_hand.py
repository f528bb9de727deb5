"""The right diagnosis written as a learner might: lower-case letters, keys with underscores,
spaces and capitals, an OrderedDict built from a table."""
from collections import OrderedDict

FOUND = """
a  Wrong RoPE base
b  none
c  positions_restart_while_decoding
d  T5 sign flipped
e  NTK called YaRN
f  half precision angles
g  None
h  power-of-two slopes
i  positions count padding
j  wrong_pairing
k  ALiBi slopes reversed
l  stale dynamic cache
"""


def diagnosis():
    return OrderedDict((line[0], line[1:].strip()) for line in FOUND.strip().splitlines())
