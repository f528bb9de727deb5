"""The bug zoo is honest (notebook 11, course/zoo): each specimen shows the bug its diagnosis
names against the course's reference (solutions/), and agrees with the reference once that bug
is removed (its family, course.zoo.models, at the claimed settings); a 'none' specimen agrees as
it is. The answers of solutions/zoo.py and of the hidden suite are the ones shown here."""
import contextlib
import importlib.util
import io
import json

import pytest
import torch

from course import zoo
from course.learner.selfcheck import run_checks
from course.zoo import models
from solutions import alibi, relative, rope, scaling, sinusoidal
from solutions.zoo import diagnosis
from tests.conftest import ROOT

ANSWERS = diagnosis()
X = torch.randn(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def repaired(letter):
    """The specimen without its own method: its family at the settings it claims."""
    cls, settings = zoo.specimens.SPECIMENS[letter]
    return cls.__bases__[0](**settings).eval()


def gap(a, b) -> float:
    return float((a.double() - b.double()).abs().max())


def rotation(model, start=0):
    positions = torch.arange(start, start + len(X))
    return positions, model.apply_rope(X.float(), positions)


def cache_gap(model, prompt=6, steps=6):
    ids = torch.arange(1, prompt + steps + 1)[None]
    full = model(ids)[:, prompt:]
    _, past = model(ids[:, :prompt], use_cache=True)
    cached = []
    for t in range(prompt, prompt + steps):
        logits, past = model(ids[:, t:t + 1], past_key_values=past, use_cache=True)
        cached.append(logits)
    return gap(torch.cat(cached, 1), full)


def left_padded(pads=3, length=8):
    ids = torch.arange(1, length + 1)[None]
    padded = torch.cat([torch.zeros(1, pads, dtype=torch.long), ids], 1)
    mask = torch.cat([torch.zeros(1, pads), torch.ones(1, length)], 1).long()
    return ids, padded, mask


def padding_gap(model, pads=3):
    ids, padded, mask = left_padded(pads)
    return gap(model(padded, attention_mask=mask)[:, pads:], model(ids))


def fresh_copy(model, letter):
    """A new model of `model`'s class at specimen `letter`'s settings (the specimen or its repair)."""
    return type(model)(**zoo.specimens.SPECIMENS[letter][1]).eval()


def history_gap(model, letter):
    """A short input's logits from a fresh copy, against a copy that first saw a long input."""
    fresh, used = fresh_copy(model, letter), fresh_copy(model, letter)
    used(torch.randint(1, 60, (1, 100), generator=torch.Generator().manual_seed(1)))
    ids = torch.arange(1, 21)[None]
    return gap(fresh(ids), used(ids))


def yarn(model):
    return scaling.yarn_inv_freq(model.head_dim, model.base, model.factor, model.train_len)


def rotated_with(inv_freq, positions):
    angles = positions.double()[:, None] * inv_freq.double()
    return rope.rotate_pairs(X, angles.cos(), angles.sin())


# ------------------------------------------------------------------ what the reference says
def disagreements(model, letter) -> list[str]:
    """Where `model` differs from the course's reference at the settings it claims (empty: none)."""
    found = []
    if cache_gap(model) > 1e-4:
        found.append("cached decoding differs from the full pass")
    if padding_gap(model) > 1e-4:
        found.append("left padding changes the real tokens")
    if isinstance(model, models.Yarn):
        table, factor = yarn(model)
        for start in (0, 1000):
            positions, got = rotation(model, start)
            if gap(got, rotated_with(table, positions)) > 1e-3:
                found.append(f"apply_rope differs from yarn_inv_freq's rotation at {start}..")
        if abs(model.attention_factor() - factor) > 1e-12 or abs(model.score_scale() - factor ** 2) > 1e-12:
            found.append("attention factor")
    elif isinstance(model, models.DynamicNtk):
        for seq_len in (20, 100, 20, 50):
            expected = scaling.dynamic_ntk_inv_freq(model.head_dim, model.base, model.factor, seq_len, model.train_len)
            if gap(model.inv_freq(seq_len), expected) > 1e-6:
                found.append(f"inv_freq({seq_len}) after longer inputs")
        if history_gap(model, letter) > 1e-6:
            found.append("answers depend on earlier inputs")
    elif isinstance(model, models.Rope):
        for start in (0, 1000, 4000):
            positions, got = rotation(model, start)
            if gap(got, rope.apply_rope(X, positions, base=model.base)) > 1e-3:
                found.append(f"apply_rope differs from the reference at {start}..")
    elif isinstance(model, models.Alibi):
        slopes = alibi.alibi_slopes(model.heads)
        if gap(model.alibi_slopes, slopes) > 1e-7:
            found.append("slopes")
        positions = torch.arange(40)
        if gap(model.bias(positions[None], positions[None])[0], alibi.alibi_bias(slopes, positions, positions)) > 1e-5:
            found.append("bias")
    elif isinstance(model, models.T5Bias):
        q, k = torch.arange(0, 300, 7), torch.arange(0, 300, 3)
        expected = relative.t5_relative_bias(model.table, q, k, bidirectional=False, max_distance=model.max_distance)
        if gap(model.relative_bias(q, k), expected) > 0:
            found.append("relative bias")
    elif isinstance(model, models.Sinusoidal):
        positions = torch.arange(50)
        if gap(model.position_table(positions), sinusoidal.sinusoidal_encoding(positions, 64)) > 1e-6:
            found.append("position table")
    return found


# ------------------------------------------------------------------ what each bug looks like
def shows(key, model, letter) -> bool:
    """Evidence for `key` in `model`'s behaviour, against the reference."""
    if key == "wrong-rope-base":  # the rotation of base 10000 where another base is claimed
        positions, got = rotation(model)
        return model.base != 10000.0 and gap(got, rope.apply_rope(X, positions, base=10000.0)) < 1e-5 \
            and gap(got, rope.apply_rope(X, positions, base=model.base)) > 1e-2
    if key == "wrong-pairing":
        positions, got = rotation(model)
        return gap(got, rope.apply_rope(X, positions, base=model.base, interleaved=True)) < 1e-5 \
            and gap(got, rope.apply_rope(X, positions, base=model.base)) > 1e-2
    if key == "half-precision-angles":  # the rotation of angles rounded to float16, far from float64's
        positions, got = rotation(model, 1000)
        inv_freq = rope.rope_inv_freq(model.head_dim, model.base)
        angles = (positions[:, None].half() * inv_freq.half()).double()
        return gap(got, rope.rotate_pairs(X, angles.cos(), angles.sin())) < 1e-4 \
            and gap(got, rope.apply_rope(X, positions, base=model.base)) > 1e-2
    if key == "ntk-called-yarn":
        ntk = rope.rope_inv_freq(model.head_dim, scaling.ntk_scaled_base(model.base, model.factor, model.head_dim))
        return gap(model.inv_freq(64), ntk) < 1e-6 and gap(model.inv_freq(64), yarn(model)[0]) > 1e-3
    if key == "stale-dynamic-cache":  # each fresh call right, but a long input changes later short ones
        fresh = scaling.dynamic_ntk_inv_freq(model.head_dim, model.base, model.factor, 20, model.train_len)
        return gap(fresh_copy(model, letter).inv_freq(20), fresh) < 1e-7 and history_gap(model, letter) > 1e-3
    if key == "power-of-two-slopes":
        H = model.heads
        return H & (H - 1) != 0 and gap(model.alibi_slopes, torch.tensor([2.0 ** (-8.0 * (i + 1) / H) for i in range(H)])) < 1e-7
    if key == "alibi-slopes-reversed":
        return gap(model.alibi_slopes, alibi.alibi_slopes(model.heads).flip(0)) < 1e-7
    if key == "t5-sign-flipped":  # buckets of query - key: the reference at negated positions
        q, k = torch.arange(0, 300, 7), torch.arange(0, 300, 3)
        flipped = relative.t5_relative_bias(model.table, -q, -k, bidirectional=False, max_distance=model.max_distance)
        return gap(model.relative_bias(q, k), flipped) == 0 and disagreements(model, letter) == ["relative bias"]
    if key == "positions-restart-while-decoding":  # cached steps = the repaired model at position 0
        ids = torch.arange(1, 9)[None]
        _, past = model(ids[:, :4], use_cache=True)
        logits, _ = model(ids[:, 4:5], past_key_values=past, use_cache=True)
        fixed = repaired(letter)
        _, past = fixed(ids[:, :4], use_cache=True)
        restarted, _ = fixed(ids[:, 4:5], position_ids=torch.zeros(1, 1, dtype=torch.long), past_key_values=past,
                             use_cache=True)
        return gap(logits, restarted) < 1e-5 and cache_gap(model) > 1e-2
    if key == "positions-count-padding":  # left-padded = the repaired model numbering every column
        ids, padded, mask = left_padded()
        counted = models.Decoder.forward(repaired(letter), padded, torch.arange(padded.shape[1])[None], mask)
        return gap(model(padded, attention_mask=mask), counted) < 1e-5 and padding_gap(model) > 1e-2
    raise KeyError(key)


@pytest.mark.parametrize("letter", zoo.letters())
def test_the_specimen_shows_its_bug_and_agrees_with_the_reference_without_it(letter):
    key = ANSWERS[letter]
    specimen = zoo.specimen(letter)
    if key == "none":
        assert disagreements(specimen, letter) == []
    else:
        assert shows(key, specimen, letter), f"{letter} does not show {key}"
        assert disagreements(specimen, letter), f"{letter} agrees with the reference"
        assert not shows(key, repaired(letter), letter), f"{letter} repaired still shows {key}"
    assert disagreements(repaired(letter), letter) == []


@pytest.mark.parametrize("letter", zoo.letters())
def test_each_specimen_is_its_family_with_one_method_of_its_own(letter):
    cls, _ = zoo.specimens.SPECIMENS[letter]
    own = [name for name, value in vars(cls).items() if callable(value) or isinstance(value, property)]
    assert len(own) == 1 and issubclass(cls.__bases__[0], models.Decoder) and cls.claim


def test_the_answers_are_the_hidden_suites_and_on_the_menu():
    spec = importlib.util.spec_from_file_location("zoo_suite", ROOT / "grader_tests" / "test_zoo.py")
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    assert suite.ANSWERS == ANSWERS and sorted(ANSWERS) == zoo.letters() and set(ANSWERS.values()) <= set(zoo.MENU)
    assert list(ANSWERS.values()).count("none") >= 1 and set(zoo.MENU) - set(ANSWERS.values())  # neither all nor every key


def test_specimens_are_deterministic_and_fast():
    ids = torch.randint(1, 64, (2, 24), generator=torch.Generator().manual_seed(3))
    for letter in zoo.letters():
        assert torch.equal(zoo.specimen(letter)(ids), zoo.specimen(letter)(ids))


def test_the_visible_checks_judge_the_form_only():
    def outcomes(value):
        return [o.passed for o in run_checks("zoo.diagnosis", {"diagnosis": lambda: value})]

    assert all(outcomes({letter: "none" for letter in zoo.letters()}))  # well formed, mostly wrong: passes
    assert outcomes({letter: key for letter, key in ANSWERS.items() if letter != "C"}) == [False, True]
    assert outcomes({**ANSWERS, "A": "fp16"}) == [True, False]
    assert not any(outcomes(["A", "none"]))


def test_the_probe_takes_a_specimen_by_letter():
    from course.probe.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--zoo", "C", "--only", "cache", "--format", "json"]) == 0
    report = json.loads(out.getvalue())
    assert report["target"]["name"] == "zoo:C" and report["probes"][0]["status"] == "fail"
    with pytest.raises(ValueError, match="no specimen"):
        zoo.specimen("Z")
