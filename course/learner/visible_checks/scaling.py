"""Visible checks for section 8, context scaling.

Expected values come from the definitions restated here (pair k of RoPE turns by
base^(-2k/d) per token; it makes L * theta_k / (2 pi) turns over L tokens) or from
properties the methods are built to have.
"""
from __future__ import annotations

import math

import torch

from course.checking import call_text, expect_close, expect_dtype, expect_shape, expect_value_error
from course.learner.visible_checks import visible


def _ladder(d, base):
    """RoPE's frequencies base^(-2k/d), float64, as a learner would write them by hand."""
    return torch.tensor([base ** (-2.0 * k / d) for k in range(d // 2)], dtype=torch.float64)


def _number(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} returned {type(value).__name__}, expected a number") from None


# --- linear_scaled_inv_freq ---------------------------------------------------------------

@visible("scaling.linear_scaled_inv_freq", "divides every frequency by the factor")
def _(ns):
    d, base, factor = 8, 10000.0, 4.0
    what = call_text("linear_scaled_inv_freq", d, base, factor)
    got = ns.linear_scaled_inv_freq(d, base, factor)
    expect_shape(got, (d // 2,), what)
    expect_dtype(got, torch.float32, what)
    expect_close(got, _ladder(d, base) / factor, what, atol=1e-9, rtol=1e-5,
                 hint="Position interpolation uses position/factor, i.e. theta_k/factor (divide, never multiply).")


@visible("scaling.linear_scaled_inv_freq", "factor 1 leaves RoPE unchanged")
def _(ns):
    d, base = 6, 500.0
    what = call_text("linear_scaled_inv_freq", d, base, 1.0)
    expect_close(ns.linear_scaled_inv_freq(d, base, 1.0), _ladder(d, base), what, atol=1e-9, rtol=1e-5)


@visible("scaling.linear_scaled_inv_freq", "factor below 1 is a ValueError naming factor")
def _(ns):
    expect_value_error(ns.linear_scaled_inv_freq, 8, 10000.0, 0.5, mentions="factor",
                       what=call_text("linear_scaled_inv_freq", 8, 10000.0, 0.5))


# --- ntk_scaled_base ----------------------------------------------------------------------

@visible("scaling.ntk_scaled_base", "slowest pair slowed by the factor, fastest pair untouched")
def _(ns):
    base, factor, d = 10000.0, 4.0, 16
    what = call_text("ntk_scaled_base", base, factor, d)
    new_base = _number(ns.ntk_scaled_base(base, factor, d), what)
    # pair k = d/2 - 1 has frequency base^(-(d-2)/d); with the new base it must be that over factor
    slowest_old = base ** (-(d - 2) / d)
    slowest_new = new_base ** (-(d - 2) / d)
    expect_close(torch.tensor(slowest_new / slowest_old, dtype=torch.float64),
                 torch.tensor(1.0 / factor, dtype=torch.float64),
                 f"{what}: ratio of the slowest pair's frequency, new/old", atol=0, rtol=1e-6,
                 hint="The exponent is d/(d-2): it makes base'^(-(d-2)/d) = base^(-(d-2)/d) / factor.")


@visible("scaling.ntk_scaled_base", "factor 1 keeps the base")
def _(ns):
    what = call_text("ntk_scaled_base", 500.0, 1.0, 8)
    got = _number(ns.ntk_scaled_base(500.0, 1.0, 8), what)
    expect_close(torch.tensor(got, dtype=torch.float64), torch.tensor(500.0, dtype=torch.float64), what,
                 atol=0, rtol=1e-9)


@visible("scaling.ntk_scaled_base", "d = 2 is a ValueError naming d (d/(d-2) is undefined)")
def _(ns):
    expect_value_error(ns.ntk_scaled_base, 10000.0, 2.0, 2, mentions="d",
                       what=call_text("ntk_scaled_base", 10000.0, 2.0, 2))


# --- dynamic_ntk_inv_freq -----------------------------------------------------------------

@visible("scaling.dynamic_ntk_inv_freq", "no change up to the original length")
def _(ns):
    d, base = 8, 10000.0
    for seq_len in (10, 64):
        what = call_text("dynamic_ntk_inv_freq", d, base, 4.0, seq_len, 64)
        got = ns.dynamic_ntk_inv_freq(d, base, 4.0, seq_len, 64)
        expect_dtype(got, torch.float32, what)
        expect_close(got, _ladder(d, base), what, atol=1e-9, rtol=1e-5,
                     hint="Use s = max(seq_len, original_max_len): short inputs keep the original base.")


@visible("scaling.dynamic_ntk_inv_freq", "at 2x the original length, factor 2 slows the slowest pair 3 times")
def _(ns):
    d, base, factor, L = 8, 10000.0, 2.0, 64
    what = call_text("dynamic_ntk_inv_freq", d, base, factor, 2 * L, L)
    got = ns.dynamic_ntk_inv_freq(d, base, factor, 2 * L, L)
    expect_shape(got, (d // 2,), what)
    # effective scale: factor * 2L / L - (factor - 1) = 3, and NTK divides the slowest pair by it
    ratio = got[-1].double() / _ladder(d, base)[-1]
    expect_close(ratio, torch.tensor(1.0 / 3.0, dtype=torch.float64),
                 f"{what}: slowest pair's frequency relative to unscaled", atol=0, rtol=1e-5,
                 hint="The scale is factor*s/original_max_len - (factor - 1), raised to d/(d-2) in the base.")
    expect_close(got[0], torch.tensor(1.0), f"{what}: fastest pair", atol=0, rtol=1e-6)


@visible("scaling.dynamic_ntk_inv_freq", "seq_len below 1 is a ValueError naming seq_len")
def _(ns):
    expect_value_error(ns.dynamic_ntk_inv_freq, 8, 10000.0, 2.0, 0, 64, mentions="seq_len",
                       what=call_text("dynamic_ntk_inv_freq", 8, 10000.0, 2.0, 0, 64))


# --- yarn_inv_freq ------------------------------------------------------------------------

def _yarn_call(ns, *args):
    what = call_text("yarn_inv_freq", *args)
    out = ns.yarn_inv_freq(*args)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(f"{what} should return a pair (inv_freq, attention_factor), got {type(out).__name__}")
    inv_freq, factor = out
    return what, inv_freq, _number(factor, f"{what}[1] (attention factor)")


@visible("scaling.yarn_inv_freq", "fast pairs kept, slow pairs divided by the factor")
def _(ns):
    d, base, s, L = 64, 10000.0, 4.0, 1024
    what, got, _ = _yarn_call(ns, d, base, s, L)
    expect_shape(got, (d // 2,), what)
    expect_dtype(got, torch.float32, what)
    theta = _ladder(d, base)
    turns = L * theta / (2 * math.pi)  # turns of each pair over the original context
    # pairs below floor(k where turns = 32) are untouched; above ceil(k where turns = 1) fully interpolated
    k_fast = math.floor(d * math.log(L / (32 * 2 * math.pi)) / (2 * math.log(base)))
    k_slow = math.ceil(d * math.log(L / (1 * 2 * math.pi)) / (2 * math.log(base)))
    assert bool(turns[k_fast] > 32) and bool(turns[k_slow] < 1)
    expect_close(got[: k_fast + 1], theta[: k_fast + 1], f"{what}[:{k_fast + 1}] (pairs with > 32 turns)",
                 atol=1e-9, rtol=1e-5, hint="Fast pairs are extrapolated: keep their frequency.")
    expect_close(got[k_slow:], theta[k_slow:] / s, f"{what}[{k_slow}:] (pairs with < 1 turn)",
                 atol=1e-12, rtol=1e-5, hint="Slow pairs are interpolated: frequency / factor.")


@visible("scaling.yarn_inv_freq", "the ratio falls in equal steps across the ramp")
def _(ns):
    d, base, s, L = 64, 10000.0, 4.0, 1024
    what, got, _ = _yarn_call(ns, d, base, s, L)
    ratio = got.double() / _ladder(d, base)
    k_fast = math.floor(d * math.log(L / (32 * 2 * math.pi)) / (2 * math.log(base)))
    k_slow = math.ceil(d * math.log(L / (1 * 2 * math.pi)) / (2 * math.log(base)))
    steps = ratio[k_fast + 1: k_slow + 1] - ratio[k_fast: k_slow]
    # each step along the linear ramp lowers the ratio by (1 - 1/s) / (k_slow - k_fast)
    expected = torch.full_like(steps, -(1 - 1 / s) / (k_slow - k_fast))
    expect_close(steps, expected, f"{what}: change of θ'_k/θ_k from pair k to k+1 for k in [{k_fast}, {k_slow})",
                 atol=1e-5, rtol=1e-4,
                 hint="Blend theta_k and theta_k/factor with a ramp linear in the pair index between floor/ceil bounds.")


@visible("scaling.yarn_inv_freq", "attention factor 0.1 ln(factor) + 1, and 1.0 without scaling")
def _(ns):
    for s in (4.0, 1.0):
        what, got, att = _yarn_call(ns, 16, 10000.0, s, 256)
        expect_close(torch.tensor(att, dtype=torch.float64),
                     torch.tensor(0.1 * math.log(s) + 1.0, dtype=torch.float64),
                     f"{what}[1] (attention factor)", atol=1e-9, rtol=1e-6)
    what, got, _ = _yarn_call(ns, 16, 10000.0, 1.0, 256)
    expect_close(got, _ladder(16, 10000.0), f"{what}[0] (factor 1 leaves RoPE unchanged)", atol=1e-9, rtol=1e-5)


# --- llama3_inv_freq ----------------------------------------------------------------------

@visible("scaling.llama3_inv_freq", "short wavelengths kept, long ones divided by the factor")
def _(ns):
    d, base, s, L = 64, 10000.0, 8.0, 1024
    what = call_text("llama3_inv_freq", d, base, s, L, 1.0, 4.0)
    got = ns.llama3_inv_freq(d, base, s, L, 1.0, 4.0)
    expect_shape(got, (d // 2,), what)
    expect_dtype(got, torch.float32, what)
    theta = _ladder(d, base)
    wavelength = 2 * math.pi / theta
    high, low = wavelength < L / 4.0, wavelength > L / 1.0
    expect_close(got[high], theta[high], f"{what}, pairs with wavelength < L/high_freq_factor",
                 atol=1e-9, rtol=1e-5, hint="High-frequency pairs (short wavelength) keep their frequency.")
    expect_close(got[low], theta[low] / s, f"{what}, pairs with wavelength > L/low_freq_factor",
                 atol=1e-12, rtol=1e-5, hint="Low-frequency pairs (long wavelength) are divided by factor.")


@visible("scaling.llama3_inv_freq", "smooth band blends by turns in the original context")
def _(ns):
    d, base, s, L = 64, 10000.0, 8.0, 1024
    what = call_text("llama3_inv_freq", d, base, s, L, 1.0, 4.0)
    got = ns.llama3_inv_freq(d, base, s, L, 1.0, 4.0)
    theta = _ladder(d, base)
    wavelength = 2 * math.pi / theta
    mid = (wavelength >= L / 4.0) & (wavelength <= L)
    assert int(mid.sum()) >= 3
    # weight of "keep" grows from 0 at wavelength L (1 turn) to 1 at wavelength L/4 (4 turns)
    a = (L / wavelength[mid] - 1.0) / (4.0 - 1.0)
    expect_close(got[mid], theta[mid] * ((1 - a) / s + a), f"{what}, pairs in the smooth band",
                 atol=1e-12, rtol=1e-5,
                 hint="In the band: (1 - a) * theta/factor + a * theta, a = (L/wavelength - low) / (high - low).")


@visible("scaling.llama3_inv_freq", "factor below 1 is a ValueError naming factor")
def _(ns):
    expect_value_error(ns.llama3_inv_freq, 8, 10000.0, 0.5, 64, mentions="factor",
                       what=call_text("llama3_inv_freq", 8, 10000.0, 0.5, 64))


# --- rope_from_config ---------------------------------------------------------------------

@visible("scaling.rope_from_config", "GPT-NeoX style: plain RoPE over the rotary part of each head")
def _(ns):
    config = dict(hidden_size=512, num_attention_heads=8, rope_theta=10000.0, partial_rotary_factor=0.25,
                  max_position_embeddings=2048, rope_scaling=None)
    what = call_text("rope_from_config", config)
    got = ns.rope_from_config(config)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise AssertionError(f"{what} returned {type(got).__name__}, expected a tuple (inv_freq, attention_scaling)")
    table, attention = got
    rotary = int(512 // 8 * 0.25)  # 16 of the 64 features of a head rotate
    expect_shape(table, (rotary // 2,), what + "[0]")
    expect_dtype(table, torch.float32, what + "[0]")
    expect_close(table, _ladder(rotary, 10000.0), what + "[0]", atol=1e-9, rtol=1e-5,
                 hint="The ladder runs over the rotary size int(head_dim * partial_rotary_factor), not the head.")
    expect_close(torch.tensor([_number(attention, what + "[1]")]), torch.tensor([1.0]), what + "[1]",
                 atol=0, rtol=1e-9, hint="Plain RoPE does not scale attention.")


@visible("scaling.rope_from_config", "yarn under the legacy 'type' key: ends of the ladder and 0.1 ln(factor) + 1")
def _(ns):
    factor, L, d = 4.0, 1024, 64
    config = dict(hidden_size=256, num_attention_heads=4, rope_theta=10000.0, max_position_embeddings=int(factor * L),
                  rope_scaling={"type": "yarn", "factor": factor, "original_max_position_embeddings": L})
    what = call_text("rope_from_config", config)
    table, attention = ns.rope_from_config(config)
    theta = _ladder(d, 10000.0)
    expect_shape(table, (d // 2,), what + "[0]")
    # pair 0 turns L/(2 pi) > beta_fast = 32 times over L tokens: kept; the last pair far under 1 turn: divided
    expect_close(table[[0, -1]], torch.stack([theta[0], theta[-1] / factor]), what + "[0], first and last pair",
                 atol=1e-12, rtol=1e-5, hint="Read the kind from 'rope_type', else from the legacy 'type'; "
                 "YaRN measures turns over original_max_position_embeddings.")
    expect_close(torch.tensor([_number(attention, what + "[1]")], dtype=torch.float64),
                 torch.tensor([0.1 * math.log(factor) + 1.0], dtype=torch.float64), what + "[1]", atol=0, rtol=1e-6,
                 hint="Without attention_factor, mscale and mscale_all_dim, YaRN scales by 0.1 ln(factor) + 1.")
