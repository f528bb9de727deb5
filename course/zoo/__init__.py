"""The bug zoo (notebook 11): twelve small models, each claiming a position scheme, each with at
most one bug from MENU. ``specimen("A")`` builds one; ``python -m course.probe --zoo A`` probes it.

Specimens are deterministic (fixed seeds), run on CPU in milliseconds and follow
``course.probe.factory``'s interface (course.zoo.models). Torch only: the learner's process may
import this package (course/sandbox/isolation.py, LEARNER_COURSE).
"""
from __future__ import annotations

from course.zoo.specimens import SPECIMENS

MENU = {
    "none": "no bug: the specimen does what it claims",
    "wrong-pairing": "RoPE rotates the other pairing than it claims (interleaved (2k, 2k+1) vs half-split (k, k+d/2))",
    "rotation-direction": "RoPE rotates by -angle (the sign of the sine terms)",
    "wrong-rope-base": "RoPE uses another base than the one it claims",
    "half-precision-angles": "RoPE angles (position x frequency) computed in float16",
    "ntk-called-yarn": "claims YaRN but scales the frequencies with NTK-aware base scaling",
    "missing-attention-factor": "YaRN frequencies without YaRN's attention factor 0.1 ln(s) + 1",
    "stale-dynamic-cache": "dynamic NTK keeps a table made for an earlier, longer sequence",
    "power-of-two-slopes": "ALiBi slopes 2^(-8i/n) for a head count n that is not a power of two",
    "alibi-slopes-reversed": "ALiBi slopes given to the heads in reverse order",
    "t5-sign-flipped": "T5 buckets of query - key instead of key - query",
    "positions-restart-while-decoding": "tokens generated with the KV cache numbered from 0 again",
    "positions-count-padding": "left padding counted in the position ids",
}


def letters() -> list[str]:
    return sorted(SPECIMENS)


def specimen(letter: str):
    """A fresh specimen `letter` (its weights are the same every time), in eval mode."""
    if letter not in SPECIMENS:
        raise ValueError(f"no specimen {letter!r}; the specimens are {', '.join(letters())}")
    cls, settings = SPECIMENS[letter]
    return cls(**settings).eval()


def claim(letter: str) -> str:
    """What specimen `letter` says it implements."""
    specimen(letter)  # the same error for an unknown letter
    return SPECIMENS[letter][0].claim


def normalised(key) -> str:
    """A menu key as written by hand ('Wrong pairing', 'wrong_pairing') in the menu's spelling."""
    return "-".join(str(key).strip().lower().replace("_", " ").replace("-", " ").split())


def read_diagnosis(value) -> dict[str, str]:
    """A learner's diagnosis as {letter: menu spelling of the key}: letters upper-cased, keys
    normalised; anything but a mapping is a ValueError saying what came back."""
    if not hasattr(value, "items"):
        raise ValueError(f"diagnosis() returned {type(value).__name__}, not a dict {{letter: bug key}}")
    return {str(letter).strip().upper(): normalised(key) for letter, key in value.items()}
