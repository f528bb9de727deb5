"""The right diagnosis as a read-only mapping built from two parallel lists, in the order the
specimens were diagnosed (the probe's failures first, then the reference comparisons)."""
from types import MappingProxyType

ORDER = ["C", "F", "H", "I", "K", "L", "A", "J", "D", "E", "B", "G"]
FOUND = ["positions-restart-while-decoding", "half-precision-angles", "power-of-two-slopes",
         "positions-count-padding", "alibi-slopes-reversed", "stale-dynamic-cache", "wrong-rope-base",
         "wrong-pairing", "t5-sign-flipped", "ntk-called-yarn", "none", "none"]


def diagnosis():
    return MappingProxyType(dict(zip(ORDER, FOUND)))
