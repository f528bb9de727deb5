"""Hidden suite, notebook 11 (the bug zoo): one test per specimen, passed by naming the bug its
behaviour shows.

The answers are written here; tests/test_zoo.py shows each one in the specimen's behaviour
against the course's reference (and that the specimen, repaired, agrees with it). A failed test
says which specimen and that the diagnosis is not the one, never which one is.
"""
import pytest

from course import zoo
from course.checking import failed

exercise = pytest.mark.exercise

ANSWERS = {
    "A": "wrong-rope-base",
    "B": "none",
    "C": "positions-restart-while-decoding",
    "D": "t5-sign-flipped",
    "E": "ntk-called-yarn",
    "F": "half-precision-angles",
    "G": "none",
    "H": "power-of-two-slopes",
    "I": "positions-count-padding",
    "J": "wrong-pairing",
    "K": "alibi-slopes-reversed",
    "L": "stale-dynamic-cache",
}


# Run in the learner's process, so that any mapping (not only a dict, which alone comes back as a
# copy) arrives as plain strings; a key that is no string arrives as its type, which is on no menu.
PAIRS = '''
def _course_zoo_pairs(diagnosis):
    value = diagnosis()
    if not callable(getattr(value, "items", None)):
        return type(value).__name__
    return [[str(letter), key if isinstance(key, str) else f"<{type(key).__name__}>"] for letter, key in value.items()]
'''


def read(submission) -> dict:
    pairs = submission.define("_course_zoo_pairs", PAIRS, "diagnosis()")(submission.diagnosis)
    if isinstance(pairs, str):
        raise failed(f"diagnosis() returned {pairs}, not a dict {{letter: bug key}}.")
    return zoo.read_diagnosis(dict(pairs))


def check_specimen(submission, letter):
    diagnosis = read(submission)
    if letter not in diagnosis:
        raise failed(f"diagnosis() has no entry for specimen {letter!r}.",
                     f"Give every specimen ({', '.join(zoo.letters())}) a key of course.zoo.MENU; 'none' is one.")
    key = diagnosis[letter]
    if key not in zoo.MENU:
        raise failed(f"specimen {letter}: {key!r} is not a key of course.zoo.MENU.", f"The keys are {', '.join(zoo.MENU)}.")
    if key != ANSWERS[letter]:
        raise failed(f"specimen {letter}: {key!r} is not the bug its behaviour shows.",
                     "Compare it with a reference at the claimed settings, and test what the suspected bug would "
                     "change (and what it would leave alone).", "misdiagnosed")


def _specimen_test(letter):
    @exercise("zoo.diagnosis")
    def test(submission):
        check_specimen(submission, letter)

    test.__name__ = test.__qualname__ = f"test_specimen_{letter}"
    test.__doc__ = f"specimen {letter} diagnosed"
    return test


for _letter in ANSWERS:
    globals()[f"test_specimen_{_letter}"] = _specimen_test(_letter)
