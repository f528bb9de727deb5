"""A diagnosis computed by the learner's own tests, run in the grading sandbox on course.zoo's
specimens (which the learner's process may import): each test returns True when the specimen
shows the bug it looks for."""
import math

import torch

from course import zoo


def rotated(x, pos, inv_freq, interleaved=False):
    """A float64 reference rotation of x (T, d) at positions pos (T,)."""
    angles = pos.double()[:, None] * inv_freq.double()
    x = x.double()
    if interleaved:
        a, b = x[:, 0::2], x[:, 1::2]
        return torch.stack((a * angles.cos() - b * angles.sin(), a * angles.sin() + b * angles.cos()), -1).flatten(-2)
    a, b = x.chunk(2, -1)
    return torch.cat((a * angles.cos() - b * angles.sin(), a * angles.sin() + b * angles.cos()), -1)


def ladder(d, base):
    return torch.tensor([base ** (-2 * k / d) for k in range(d // 2)], dtype=torch.float64)


def paper_slopes(n):
    p = 2 ** int(math.log2(n))
    return [2 ** (-8 * (i + 1) / p) for i in range(p)] + [2 ** (-4 * (2 * i + 1) / p) for i in range(n - p)]


def rope_gap(model, base, interleaved=False, start=0):
    x, pos = torch.randn(16, 16, generator=torch.Generator().manual_seed(0)), torch.arange(start, start + 16)
    return float((model.apply_rope(x, pos).double() - rotated(x, pos, ladder(16, base), interleaved)).abs().max())


def cache_differs(model):
    ids = torch.arange(1, 13)[None]
    full = model(ids)[:, 6:]
    _, past = model(ids[:, :6], use_cache=True)
    steps = []
    for t in range(6, 12):
        logits, past = model(ids[:, t:t + 1], past_key_values=past, use_cache=True)
        steps.append(logits)
    return float((torch.cat(steps, 1) - full).abs().max()) > 1e-4


def padding_differs(model):
    ids = torch.arange(1, 9)[None]
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    mask = torch.cat([torch.zeros(1, 3), torch.ones(1, 8)], 1).long()
    return float((model(padded, attention_mask=mask)[:, 3:] - model(ids)).abs().max()) > 1e-4


def yarn_table(d, base, factor, length):
    theta = ladder(d, base)
    low = max(math.floor(d * math.log(length / (32 * 2 * math.pi)) / (2 * math.log(base))), 0)
    high = min(math.ceil(d * math.log(length / (1 * 2 * math.pi)) / (2 * math.log(base))), d - 1)
    ramp = ((torch.arange(d // 2) - low) / (high - low)).clamp(0, 1).double()
    return theta * (1 - ramp) + theta / factor * ramp


def used_model_differs(letter):
    fresh, used = zoo.specimen(letter), zoo.specimen(letter)
    ids = torch.arange(1, 21)[None] % 60
    used(torch.randint(1, 60, (1, 100), generator=torch.Generator().manual_seed(1)))
    return float((fresh(ids) - used(ids)).abs().max()) > 1e-5


def diagnose(letter):
    model = zoo.specimen(letter)
    scheme = model.position_scheme
    if scheme == "alibi":
        paper = torch.tensor(paper_slopes(model.heads))
        got = model.alibi_slopes.double()
        if torch.allclose(got, paper.double()):
            return "none"
        if torch.allclose(got, paper.flip(0).double()):
            return "alibi-slopes-reversed"
        return "power-of-two-slopes"
    if scheme == "t5":
        q = k = torch.arange(10)
        rel = k[None, :] - q[:, None]
        return "none" if torch.equal(model.relative_bias(q, k), model.table[model.bucket(rel)].permute(2, 0, 1)) \
            else "t5-sign-flipped"
    if scheme == "sinusoidal":
        return "positions-count-padding" if padding_differs(model) else "none"
    if "YaRN" in model.claim:
        got = model.inv_freq(64).double()
        return "none" if torch.allclose(got, yarn_table(16, 10000.0, 4.0, 32), rtol=1e-5) else "ntk-called-yarn"
    if "dynamic" in model.claim:
        return "stale-dynamic-cache" if used_model_differs(letter) else "none"
    base = 500000.0 if "500000" in model.claim else 10000.0
    if rope_gap(model, base, interleaved=True) < 1e-5:
        return "wrong-pairing"
    if rope_gap(model, base) > 1e-5 and rope_gap(model, 10000.0) < 1e-5:
        return "wrong-rope-base"
    if rope_gap(model, base, start=1000) > 1e-3:
        return "half-precision-angles"
    return "positions-restart-while-decoding" if cache_differs(model) else "none"


def diagnosis():
    return {letter: diagnose(letter) for letter in zoo.letters()}
