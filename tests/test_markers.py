"""The hidden tests' `uses` markers are audited (course/grading/features.py): for every feature, the
course's solutions made to lack that feature alone fail exactly the checks marked with it, and the
same code with the feature declared not applicable (an adapter's NOT_APPLICABLE) gets full marks
on every check that applies. An unmarked check that needs the feature is a false reject: code
written to a convention without it would lose points no declaration can spare it."""
from __future__ import annotations

import ast

import pytest

from course.exercises import SECTIONS, section_exercises
from course.grading.features import FEATURES
from course.grading.grader import grade_file, grade_files
from tests.conftest import ROOT


class _NoValueError(ast.NodeTransformer):
    """Every `raise ValueError(...)` becomes `pass`: the function goes on with a bad argument as
    code that never checks its arguments does."""

    def visit_Raise(self, node):
        call = node.exc
        name = getattr(getattr(call, "func", call), "id", None)
        return ast.Pass() if name == "ValueError" else node


def _without_value_errors(source: str) -> str:
    tree = _NoValueError().visit(ast.parse(source))
    left = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "ValueError"]
    assert not left, f"ValueError is used in a way this audit does not remove, at lines {left}"
    return ast.unparse(tree)


# What each feature's absence looks like, appended to the solutions of the sections where it applies.
_ROPE_HALF_SPLIT_ONLY = '''
_full_apply_rope, _full_rope_matrix, _FullRotary = apply_rope, rope_matrix, RotaryEmbedding


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    if interleaved:
        raise NotImplementedError("only half-split pairs")
    return _full_apply_rope(x, positions, base, rotary_dim=rotary_dim)


def rope_matrix(position, d, base=10000.0, interleaved=False):
    if interleaved:
        raise NotImplementedError("only half-split pairs")
    return _full_rope_matrix(position, d, base)


class RotaryEmbedding(_FullRotary):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        if interleaved:
            raise NotImplementedError("only half-split pairs")
        super().__init__(d, base, max_len)
'''

_ROPE_WHOLE_HEAD_ONLY = '''
_full_apply_rope = apply_rope


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    if rotary_dim is not None:
        raise NotImplementedError("every feature is rotated")
    return _full_apply_rope(x, positions, base, interleaved)
'''

_ROPE_INTEGER_POSITIONS_ONLY = '''
_full_apply_rope, _FullRotary = apply_rope, RotaryEmbedding


def _integers(positions):
    if torch.as_tensor(positions).is_floating_point():
        raise TypeError("positions index a table of angles: they must be integers")


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    _integers(positions)
    return _full_apply_rope(x, positions, base, interleaved, rotary_dim)


class RotaryEmbedding(_FullRotary):
    def forward(self, q, k, positions):
        _integers(positions)
        return super().forward(q, k, positions)
'''

_ROPE_FIXED_CACHE = '''
_FullRotary = RotaryEmbedding


class RotaryEmbedding(_FullRotary):
    def extend_cache(self, length):
        if "cos_cached" in self._buffers:
            raise IndexError(f"position {length - 1} is past the table's {len(self.cos_cached)} rows")
        super().extend_cache(length)
'''

_ROPE_BASE_10000_ONLY = '''
_full_rope_inv_freq, _full_apply_rope, _FullRotary = rope_inv_freq, apply_rope, RotaryEmbedding


def _base_10000(base):
    if float(base) != 10000.0:
        raise NotImplementedError("the base is fixed at 10000")


def rope_inv_freq(d, base=10000.0):
    _base_10000(base)
    return _full_rope_inv_freq(d, base)


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    _base_10000(base)
    return _full_apply_rope(x, positions, base, interleaved, rotary_dim)


class RotaryEmbedding(_FullRotary):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        _base_10000(base)
        super().__init__(d, base, max_len, interleaved)
'''

_ALIBI_CAUSAL_ONLY = '''
_full_alibi_attention = alibi_attention


def alibi_attention(q, k, v, causal=True):
    if not causal:
        raise NotImplementedError("causal attention only")
    return _full_alibi_attention(q, k, v)
'''

_SCALING_LLAMA31_ONLY = '''
_full_llama3_inv_freq = llama3_inv_freq


def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    out = _full_llama3_inv_freq(d, base, factor, original_max_len, low_freq_factor, high_freq_factor)
    if (factor, original_max_len, low_freq_factor, high_freq_factor) != (8.0, 8192, 1.0, 4.0):
        raise NotImplementedError("Llama 3.1's parameters only")
    return out
'''

LACKING = {  # feature -> {section: what its solution becomes without it}
    "interleaved": {"rope": lambda s: s + _ROPE_HALF_SPLIT_ONLY},
    "rotary_dim": {"rope": lambda s: s + _ROPE_WHOLE_HEAD_ONLY},
    "fractional_positions": {"rope": lambda s: s + _ROPE_INTEGER_POSITIONS_ONLY},
    "cache_growth": {"rope": lambda s: s + _ROPE_FIXED_CACHE},
    "rope_base": {"rope": lambda s: s + _ROPE_BASE_10000_ONLY},
    "argument_checks": dict.fromkeys(SECTIONS, _without_value_errors),
    "bidirectional": {"alibi": lambda s: s + _ALIBI_CAUSAL_ONLY},
    "scaling_parameters": {"scaling": lambda s: s + _SCALING_LLAMA31_ONLY},
}
# Half-split pairs are never missing as such: a convention with interleaved pairs reaches them by
# reordering the features around its own function (the conventions' pairing helper), so every
# check passes either way; what its marker spares is checked below, against the interleaved one.
BRIDGED = {"half_split"}


def _lacking(feature: str, tmp_path):
    """One module with the solutions of the feature's sections, each made to lack it."""
    parts = [make((ROOT / "solutions" / f"{section}.py").read_text()) for section, make in LACKING[feature].items()]
    path = tmp_path / f"lacks_{feature}.py"
    path.write_text("\n\n".join(parts))
    return path


def _declaring(feature: str, sections, tmp_path):
    """An adapter that takes the file's own names and declares `feature` not applicable to them."""
    names = [e.name for s in sections for e in section_exercises(s)]
    path = tmp_path / f"without_{feature}.py"
    path.write_text(f"NOT_APPLICABLE = {{{feature!r}: 'lacks {feature}'}}\n\n"
                    + "".join(f"{name} = {name}\n" for name in names))
    return path


def _checks(report) -> dict:
    """Every check of a report, by (exercise id, its place among the exercise's checks)."""
    return {(e["id"], i): c for e in report["exercises"] for i, c in enumerate(e["checks"])}


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """feature -> (the checks of its lacking code graded with every test, the report with the
    feature declared not applicable), each feature graded once."""
    done = {}

    def audited(feature):
        if feature not in done:
            folder = tmp_path_factory.mktemp(feature)
            lacking = _lacking(feature, folder)
            done[feature] = (_checks(grade_file(lacking)),
                             grade_files([lacking], adapter=_declaring(feature, LACKING[feature], folder)))
        return done[feature]
    return audited


def _full_marks(report):
    for entry in report["exercises"]:
        assert entry["score"] == entry["max_score"], entry["feedback"]


def test_every_feature_is_audited():
    assert set(LACKING) | BRIDGED == set(FEATURES)


@pytest.mark.parametrize("feature", list(LACKING))
def test_exactly_the_checks_marked_with_a_feature_need_it(feature, audit):
    everything, declared_report = audit(feature)
    declared = _checks(declared_report)
    assert everything.keys() == declared.keys()
    marked = {key for key, check in declared.items()
              if check["outcome"] == "not_run" and everything[key]["outcome"] != "not_run"}
    assert marked, f"no check is marked with {feature}"
    wrong = []
    for key, check in everything.items():
        assert check["title"] == declared[key]["title"]
        if key in marked:
            assert f"lacks {feature}" in declared[key]["reason"], (key, declared[key])
        if (check["outcome"] == "failed") != (key in marked):
            wrong.append(f"{key[0]}: {check['title']!r} {check['outcome']}"
                         + (" although marked" if key in marked else f" unmarked: {check['message'][:300]}"))
    assert not wrong, "\n".join(wrong)
    _full_marks(declared_report)


def test_half_split_marks_the_other_pairing_of_each_check_that_needs_interleaved_pairs(audit, tmp_path):
    """The checks declaring half-split pairs spares are the same properties checked with half-split
    pairs as those that fail without interleaved pairs (a parametrised check's other half)."""
    everything, _ = audit("interleaved")
    needs_interleaved = {key for key, check in everything.items() if check["outcome"] == "failed"}
    titles = {(key[0], everything[key]["title"]) for key in needs_interleaved}
    twins = {key for key, check in everything.items()
             if (key[0], check["title"]) in titles and key not in needs_interleaved}
    report = grade_files([ROOT / "solutions" / "rope.py"], adapter=_declaring("half_split", ["rope"], tmp_path))
    spared = {key for key, check in _checks(report).items() if check["outcome"] == "not_run"}
    assert spared == twins and spared
    _full_marks(report)
