"""Hidden suite, section 8 (context scaling).

References are independent of solutions/: float64 NumPy written from each method's
definition (position interpolation, NTK-aware base, dynamic NTK as in emozilla's rule,
YaRN's NTK-by-parts as the YaRN reference code and Hugging Face compute it, Llama 3.1's
published frequency bands). tests/test_scaling_against_transformers.py shows these
references agree with transformers' own functions.

None of these functions takes a tensor, so there is no input dtype, device or in-place
case to test; every table must come back float32 of shape (d/2,).
"""
import math

import numpy as np
import pytest
import torch

from course.checking import (Hint, Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_shape,
                             expect_value_error)
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise
# relative accuracy of float32 tables; atol tiny because slow frequencies are ~1e-7
TABLE = dict(atol=1e-12, rtol=1e-5)


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def ref_theta(d, base):
    """RoPE's ladder base^(-2k/d), k = 0 .. d/2 - 1."""
    return float(base) ** (-np.arange(0, d, 2, dtype=np.float64) / d)


def ref_ntk_base(base, factor, d, exponent=None):
    return float(base) * float(factor) ** (d / (d - 2) if exponent is None else exponent)


def ref_dynamic(d, base, factor, seq_len, original_max_len, use_max=True, shift=True, exponent=None):
    s = max(seq_len, original_max_len) if use_max else seq_len
    alpha = factor * s / original_max_len - ((factor - 1) if shift else 0.0)
    return ref_theta(d, float(base) * alpha ** (d / (d - 2) if exponent is None else exponent))


def ref_yarn(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True,
             reverse=False, swap_betas=False, upper=None, blend_wavelengths=False):
    """YaRN's frequencies: keep weight 1 for fast pairs, 0 for slow ones, linear in the pair index
    between the pair making beta_fast turns and the pair making beta_slow turns over
    original_max_len tokens (floor / ceil when truncate, clipped to [0, d - 1])."""
    theta = ref_theta(d, base)

    def pair_making(turns):  # original_max_len * base^(-2k/d) = 2 pi turns, solved for k
        return (d / 2) * math.log(original_max_len / (2 * math.pi * turns)) / math.log(base)

    if swap_betas:
        beta_fast, beta_slow = beta_slow, beta_fast
    start, stop = pair_making(beta_fast), pair_making(beta_slow)
    if truncate:
        start, stop = math.floor(start), math.ceil(stop)
    start, stop = max(start, 0), min(stop, d - 1 if upper is None else upper)
    if stop == start:
        stop += 0.001
    interp = np.clip((np.arange(d // 2) - start) / (stop - start), 0.0, 1.0)  # 1 = divide by factor
    if reverse:
        interp = 1.0 - interp
    if blend_wavelengths:
        return 1.0 / ((1 - interp) / theta + interp * factor / theta)
    return theta * ((1 - interp) + interp / factor)


def ref_attention_factor(factor):
    return 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0


def ref_llama3(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0,
               swap_bands=False, reverse_smooth=False, no_band=False, multiply_thresholds=False,
               per_radian=False, ratio_inverted=False):
    theta = ref_theta(d, base)
    wavelength = 1 / theta if per_radian else 2 * math.pi / theta
    if multiply_thresholds:
        short, long = original_max_len * high_freq_factor, original_max_len * low_freq_factor
        short, long = min(short, long), max(short, long)
    else:
        short, long = original_max_len / high_freq_factor, original_max_len / low_freq_factor
    keep = wavelength / original_max_len if ratio_inverted else original_max_len / wavelength  # turns over it
    a = (keep - low_freq_factor) / (high_freq_factor - low_freq_factor)
    if reverse_smooth:
        a = 1 - a
    middle = theta * ((1 - a) / factor + a)
    if no_band:
        middle = theta
    fast, slow = theta, theta / factor
    if swap_bands:
        fast, slow = slow, fast
    return np.where(wavelength < short, fast, np.where(wavelength > long, slow, middle))


def mistakes_of(got, candidates):
    return closest_mistake(got, {k: t64(v) for k, v in candidates.items()}, atol=1e-10)


def close_table(got, expected) -> bool:
    return isinstance(got, torch.Tensor) and got.shape == expected.shape and \
        torch.allclose(got.double(), t64(expected), **TABLE)


def expect_table(got, expected, what, hint=""):
    expect_shape(got, expected.shape, what)
    expect_close(got, t64(expected), what, **TABLE, hint=hint)


def expect_number(got, what, strict=False):
    """A Python float (strict), or anything holding one number (values are judged apart from the type)."""
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    if not strict and isinstance(got, torch.Tensor) and got.numel() == 1:
        return float(got)
    raise Mismatch(f"{what} returned {type(got).__name__}, expected a Python float", "python-float")


# ---------------------------------------------------------------- linear_scaled_inv_freq
@exercise("scaling.linear_scaled_inv_freq", weight=2)
@pytest.mark.parametrize("d,base,factor", [(4, 10000.0, 2.0), (64, 500000.0, 8.0), (6, 100, 3)])
def test_linear_values(submission, d, base, factor):
    """divides every RoPE frequency base^(-2k/d) by the factor"""
    what = call_text("linear_scaled_inv_freq", d, base, factor)
    got = submission.linear_scaled_inv_freq(d, base, factor)
    theta = ref_theta(d, base)
    hint = mistakes_of(got, {
        mistake("pi-direction", "frequencies multiplied by the factor (positions multiplied by it): position "
                "interpolation divides positions, so theta_k / factor"): theta * factor,
        mistake("pi-direction", "the unscaled RoPE frequencies (the factor is not applied)"): theta,
        mistake("pi-direction", "the base multiplied by the factor: that is a base change, position interpolation "
                "divides every frequency by the factor"): ref_theta(d, base * factor),
    })
    expect_table(got, theta / factor, what, hint=hint)


@exercise("scaling.linear_scaled_inv_freq")
@pytest.mark.robustness
def test_linear_dtype(submission):
    """returns float32 of shape (d/2,)"""
    got = submission.linear_scaled_inv_freq(16, 10000.0, 4.0)
    what = call_text("linear_scaled_inv_freq", 16, 10000.0, 4.0)
    expect_shape(got, (8,), what)
    expect_dtype(got, torch.float32, what)


@exercise("scaling.linear_scaled_inv_freq")
def test_linear_factor_one(submission):
    """leaves RoPE unchanged with factor 1"""
    got = submission.linear_scaled_inv_freq(8, 10000.0, 1.0)
    expect_table(got, ref_theta(8, 10000.0), call_text("linear_scaled_inv_freq", 8, 10000.0, 1.0))


@exercise("scaling.linear_scaled_inv_freq")
@pytest.mark.uses("argument_checks")
def test_linear_bad_arguments(submission):
    """rejects factor < 1 and an odd d with a ValueError naming the argument"""
    expect_value_error(submission.linear_scaled_inv_freq, 8, 10000.0, 0.5, mentions="factor",
                       what=call_text("linear_scaled_inv_freq", 8, 10000.0, 0.5))
    expect_value_error(submission.linear_scaled_inv_freq, 7, 10000.0, 2.0, mentions="d",
                       what=call_text("linear_scaled_inv_freq", 7, 10000.0, 2.0))


# ---------------------------------------------------------------- ntk_scaled_base
@exercise("scaling.ntk_scaled_base", weight=2)
@pytest.mark.parametrize("base,factor,d", [(10000.0, 4.0, 8), (10000.0, 8.0, 128), (500000.0, 2.0, 64)])
def test_ntk_values(submission, base, factor, d):
    """is base * factor^(d/(d-2))"""
    what = call_text("ntk_scaled_base", base, factor, d)
    got = expect_number(submission.ntk_scaled_base(base, factor, d), what)
    candidates = {
        mistake("ntk-exponent", "base * factor^(d/2): the exponent is d/(d-2)"): ref_ntk_base(base, factor, d, d / 2),
        mistake("ntk-exponent", "base * factor without the exponent d/(d-2): then the slowest pair is divided by "
                "less than the factor"): ref_ntk_base(base, factor, d, 1.0),
        mistake("ntk-exponent", "base * factor^((d-2)/d): the exponent is upside down, it is d/(d-2)"):
            ref_ntk_base(base, factor, d, (d - 2) / d),
    }
    hint = mistakes_of(torch.tensor([got], dtype=torch.float64), {k: [v] for k, v in candidates.items()})
    expect_close(torch.tensor([got], dtype=torch.float64), t64([ref_ntk_base(base, factor, d)]), what,
                 atol=0, rtol=1e-6, hint=hint)


@exercise("scaling.ntk_scaled_base")
def test_ntk_slowest_pair(submission):
    """slows the slowest pair by exactly the factor and keeps the fastest"""
    what = call_text("ntk_scaled_base", 10000.0, 3.0, 16)
    new_base = expect_number(submission.ntk_scaled_base(10000.0, 3.0, 16), what)
    ratio = ref_theta(16, new_base)[-1] / ref_theta(16, 10000.0)[-1]
    expect_close(t64([ratio]), t64([1 / 3.0]), f"{what}: slowest pair's frequency relative to base 10000",
                 atol=0, rtol=1e-6)


@exercise("scaling.ntk_scaled_base")
@pytest.mark.robustness
def test_ntk_returns_float(submission):
    """returns a Python float (factor 1 keeps the base)"""
    what = call_text("ntk_scaled_base", 500.0, 1.0, 8)
    got = expect_number(submission.ntk_scaled_base(500.0, 1.0, 8), what, strict=True)
    expect_close(t64([got]), t64([500.0]), what, atol=0, rtol=1e-9)


@exercise("scaling.ntk_scaled_base")
@pytest.mark.parametrize("args,name", [((10000.0, 2.0, 2), "d"), ((10000.0, 0.5, 8), "factor")])
@pytest.mark.uses("argument_checks")
def test_ntk_bad_arguments(submission, args, name):
    """rejects d <= 2 and factor < 1 with a ValueError naming the argument"""
    expect_value_error(submission.ntk_scaled_base, *args, mentions=name, what=call_text("ntk_scaled_base", *args))


# ---------------------------------------------------------------- dynamic_ntk_inv_freq
def dynamic_mistakes(d, base, factor, seq_len, L):
    return {
        mistake("dynamic-ntk", "the length used without max(seq_len, original_max_len): below the original length "
                "the base must not change"):
            ref_dynamic(d, base, factor, seq_len, L, use_max=False) if factor * seq_len / L - (factor - 1) > 0
            else np.full(d // 2, np.nan),
        mistake("dynamic-ntk", "factor * s / original_max_len without subtracting (factor - 1)"):
            ref_dynamic(d, base, factor, seq_len, L, shift=False),
        mistake("dynamic-ntk", "static NTK scaling: dynamic NTK's base depends on seq_len"):
            ref_theta(d, ref_ntk_base(base, factor, d)),
        mistake("ntk-exponent", "the scale not raised to d/(d-2) in the base"):
            ref_dynamic(d, base, factor, seq_len, L, exponent=1.0),
    }


@exercise("scaling.dynamic_ntk_inv_freq", weight=2)
@pytest.mark.parametrize("d,base,factor,seq_len,L", [(8, 10000.0, 2.0, 128, 64), (64, 500000.0, 8.0, 3000, 2048),
                                                     (16, 10000.0, 1.0, 200, 50)])
def test_dynamic_values_beyond(submission, d, base, factor, seq_len, L):
    """past the original length uses base * (factor*s/L - (factor-1))^(d/(d-2))"""
    what = call_text("dynamic_ntk_inv_freq", d, base, factor, seq_len, L)
    got = submission.dynamic_ntk_inv_freq(d, base, factor, seq_len, L)
    hint = mistakes_of(got, dynamic_mistakes(d, base, factor, seq_len, L))
    expect_table(got, ref_dynamic(d, base, factor, seq_len, L), what, hint=hint)


@exercise("scaling.dynamic_ntk_inv_freq", weight=2)
@pytest.mark.parametrize("seq_len", [32, 64])
def test_dynamic_within_original(submission, seq_len):
    """keeps the original frequencies up to original_max_len"""
    d, base, factor, L = 8, 10000.0, 1.5, 64
    what = call_text("dynamic_ntk_inv_freq", d, base, factor, seq_len, L)
    got = submission.dynamic_ntk_inv_freq(d, base, factor, seq_len, L)
    hint = mistakes_of(got, dynamic_mistakes(d, base, factor, seq_len, L))
    if not hint and isinstance(got, torch.Tensor) and bool(torch.isnan(got).any()):
        hint = Hint("NaN: factor*seq_len/original_max_len - (factor-1) went negative. "
                    "Use s = max(seq_len, original_max_len).", "dynamic-ntk")
    expect_table(got, ref_theta(d, base), what, hint=hint)


@exercise("scaling.dynamic_ntk_inv_freq")
@pytest.mark.robustness
def test_dynamic_dtype(submission):
    """returns float32 of shape (d/2,)"""
    what = call_text("dynamic_ntk_inv_freq", 16, 10000.0, 2.0, 300, 100)
    got = submission.dynamic_ntk_inv_freq(16, 10000.0, 2.0, 300, 100)
    expect_shape(got, (8,), what)
    expect_dtype(got, torch.float32, what)


@exercise("scaling.dynamic_ntk_inv_freq")
@pytest.mark.parametrize("args,name", [((2, 10000.0, 2.0, 100, 64), "d"), ((7, 10000.0, 2.0, 100, 64), "d"),
                                       ((8, 10000.0, 0.5, 100, 64), "factor"), ((8, 10000.0, 2.0, 0, 64), "seq_len"),
                                       ((8, 10000.0, 2.0, 100, 0), "original_max_len")])
@pytest.mark.uses("argument_checks")
def test_dynamic_bad_arguments(submission, args, name):
    """rejects bad d, factor, seq_len, original_max_len with a ValueError naming it"""
    expect_value_error(submission.dynamic_ntk_inv_freq, *args, mentions=name,
                       what=call_text("dynamic_ntk_inv_freq", *args))


# ---------------------------------------------------------------- yarn_inv_freq
def call_yarn(submission, *args, **kwargs):
    what = call_text("yarn_inv_freq", *args, **kwargs)
    out = submission.yarn_inv_freq(*args, **kwargs)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Mismatch(f"{what} returned {type(out).__name__}; it must return a pair (inv_freq, attention_factor)",
                       "not-a-pair")
    return what, out[0], out[1]


def yarn_mistakes(d, base, factor, L, beta_fast=32.0, beta_slow=1.0, truncate=True):
    args = (d, base, factor, L, beta_fast, beta_slow)
    return {
        mistake("yarn-ramp", "plain NTK-aware base scaling, base * factor^(d/(d-2)) (the course seed's 'YaRN'): "
                "YaRN keeps the fast pairs, divides the slow ones by the factor and ramps between them"):
            ref_theta(d, ref_ntk_base(base, factor, d)),
        mistake("yarn-ramp", "position interpolation for every pair: YaRN keeps pairs that make more than beta_fast "
                "turns"): ref_theta(d, base) / factor,
        mistake("yarn-ramp", "the ramp reversed: fast pairs (many turns) must keep their frequency and slow pairs "
                "(under one turn) be divided by the factor"): ref_yarn(*args, truncate=truncate, reverse=True),
        mistake("yarn-ramp", "beta_fast and beta_slow swapped: the ramp starts at the pair making beta_fast turns"):
            ref_yarn(*args, truncate=truncate, swap_betas=True),
        mistake("yarn-ramp", "ramp bounds not rounded outwards: with truncate=True take floor of the fast bound and "
                "ceil of the slow one"): ref_yarn(*args, truncate=False),
        mistake("yarn-ramp", "ramp bounds rounded although truncate=False"): ref_yarn(*args, truncate=True),
        mistake("yarn-ramp", "the slow bound clipped at the last pair d/2 - 1; the reference code clips it at d - 1"):
            ref_yarn(*args, truncate=truncate, upper=d // 2 - 1),
        mistake("yarn-ramp", "the ramp applied to wavelengths instead of frequencies: blend theta_k and theta_k / "
                "factor"): ref_yarn(*args, truncate=truncate, blend_wavelengths=True),
    }


@exercise("scaling.yarn_inv_freq", weight=3)
@pytest.mark.parametrize("d,base,factor,L", [(16, 10000.0, 2.0, 256), (64, 10000.0, 4.0, 1024),
                                             (128, 500000.0, 8.0, 8192), (128, 1000000.0, 4.0, 32768)])
def test_yarn_frequencies(submission, d, base, factor, L):
    """keeps fast pairs, divides slow pairs by the factor, ramps linearly between"""
    what, got, _ = call_yarn(submission, d, base, factor, L)
    hint = mistakes_of(got, yarn_mistakes(d, base, factor, L))
    expect_table(got, ref_yarn(d, base, factor, L), what + "[0]", hint=hint)


@exercise("scaling.yarn_inv_freq", weight=2)
@pytest.mark.parametrize("factor", [2.0, 4.0, 16.0, 40.0])
def test_yarn_attention_factor(submission, factor):
    """returns the attention factor 0.1 ln(factor) + 1"""
    what, _, att = call_yarn(submission, 32, 10000.0, factor, 2048)
    att = expect_number(att, what + "[1]")
    hint = mistakes_of(t64([att]), {
        mistake("yarn-attention-factor", "a missing attention factor (1.0): YaRN scales cos and sin by 0.1 "
                "ln(factor) + 1"): [1.0],
        mistake("yarn-attention-factor", "(0.1 ln(factor) + 1)^2, the factor the logits end up multiplied by; "
                "return the factor applied to cos and sin"): [ref_attention_factor(factor) ** 2],
        mistake("yarn-attention-factor", "sqrt(0.1 ln(factor) + 1); the attention factor itself is 0.1 ln(factor) + "
                "1"): [math.sqrt(ref_attention_factor(factor))],
        mistake("yarn-attention-factor", "a base-10 logarithm: use the natural log"): [0.1 * math.log10(factor) + 1],
    })
    expect_close(t64([att]), t64([ref_attention_factor(factor)]), what + "[1] (attention factor)",
                 atol=1e-9, rtol=1e-6, hint=hint)


@exercise("scaling.yarn_inv_freq")
def test_yarn_no_scaling(submission):
    """with factor 1 leaves RoPE unchanged and the attention factor at 1.0"""
    what, got, att = call_yarn(submission, 16, 10000.0, 1.0, 512)
    expect_table(got, ref_theta(16, 10000.0), what + "[0]")
    expect_close(t64([expect_number(att, what + "[1]")]), t64([1.0]), what + "[1] (attention factor)", atol=1e-12,
                 rtol=0)


@exercise("scaling.yarn_inv_freq", weight=2)
def test_yarn_no_truncate(submission):
    """with truncate=False uses the fractional ramp bounds"""
    args = (64, 10000.0, 4.0, 1024)
    what, got, _ = call_yarn(submission, *args, truncate=False)
    hint = mistakes_of(got, yarn_mistakes(*args, truncate=False))
    expect_table(got, ref_yarn(*args, truncate=False), what + "[0]", hint=hint)


@exercise("scaling.yarn_inv_freq")
def test_yarn_custom_betas(submission):
    """uses beta_fast and beta_slow for the ramp bounds"""
    args = (64, 10000.0, 8.0, 2048, 16.0, 2.0)
    what, got, _ = call_yarn(submission, *args)
    hint = mistakes_of(got, yarn_mistakes(*args))
    expect_table(got, ref_yarn(*args), what + "[0]", hint=hint)


@exercise("scaling.yarn_inv_freq")
@pytest.mark.parametrize("d,base,factor,L", [(16, 10000.0, 4.0, 64), (16, 500.0, 4.0, 8192)])
def test_yarn_clipped_bounds(submission, d, base, factor, L):
    """clips the ramp bounds to [0, d-1] like the reference code"""
    what, got, _ = call_yarn(submission, d, base, factor, L)
    hint = mistakes_of(got, yarn_mistakes(d, base, factor, L))
    expect_table(got, ref_yarn(d, base, factor, L), what + "[0]", hint=hint)


@exercise("scaling.yarn_inv_freq")
@pytest.mark.robustness
def test_yarn_dtype(submission):
    """returns a float32 table of shape (d/2,) and one number (the contract fixes no type for it)"""
    what, got, att = call_yarn(submission, 32, 10000.0, 4.0, 1024)
    expect_shape(got, (16,), what + "[0]")
    expect_dtype(got, torch.float32, what + "[0]")
    expect_number(att, what + "[1]")


@exercise("scaling.yarn_inv_freq")
@pytest.mark.parametrize("args,name", [((7, 10000.0, 2.0, 1024), "d"), ((8, 10000.0, 0.5, 1024), "factor"),
                                       ((8, 10000.0, 2.0, 0), "original_max_len")])
@pytest.mark.uses("argument_checks")
def test_yarn_bad_arguments(submission, args, name):
    """rejects an odd d, factor < 1, original_max_len < 1 with a ValueError naming it"""
    expect_value_error(submission.yarn_inv_freq, *args, mentions=name, what=call_text("yarn_inv_freq", *args))


# ---------------------------------------------------------------- llama3_inv_freq
def llama_mistakes(d, base, factor=8.0, *rest):
    args = (d, base, factor, *rest)
    return {
        mistake("llama3-bands", "the bands swapped: short wavelengths (high frequencies) keep theta_k, long ones "
                "are divided by factor"): ref_llama3(*args, swap_bands=True),
        mistake("llama3-smoothing", "the smoothing weight reversed: in the band use (1 - a) * theta/factor + a * theta "
                "with a = (L/wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)"):
            ref_llama3(*args, reverse_smooth=True),
        mistake("llama3-bands", "no smooth band (the middle pairs left unscaled)"): ref_llama3(*args, no_band=True),
        mistake("llama3-bands", "thresholds original_max_len * factor; the wavelength thresholds are "
                "original_max_len / high_freq_factor and original_max_len / low_freq_factor"):
            ref_llama3(*args, multiply_thresholds=True),
        mistake("llama3-smoothing", "the smoothing weight from wavelength / original_max_len; it is "
                "original_max_len / wavelength (the turns a pair makes over the original context)"):
            ref_llama3(*args, ratio_inverted=True),
        mistake("llama3-bands", "every frequency divided by factor (that is position interpolation): Llama 3.1 "
                "keeps the short wavelengths and blends the middle band"): ref_theta(d, base) / factor,
        mistake("frequency-vs-wavelength", "wavelength 1/theta_k; a pair's wavelength is 2 pi / theta_k tokens"):
            ref_llama3(*args, per_radian=True),
    }


OTHER_PARAMETERS = pytest.mark.uses("scaling_parameters")


@exercise("scaling.llama3_inv_freq", weight=2)
@pytest.mark.parametrize("args", [pytest.param((16, 10000.0, 4.0, 256, 1.0, 4.0), marks=OTHER_PARAMETERS),
                                  pytest.param((64, 10000.0, 4.0, 1024, 1.0, 4.0), marks=OTHER_PARAMETERS),
                                  pytest.param((32, 10000.0, 16.0, 512, 0.5, 2.0), marks=OTHER_PARAMETERS),
                                  (128, 500000.0, 8.0, 8192, 1.0, 4.0)])
def test_llama3_values(submission, args):
    """keeps short wavelengths, divides long ones, blends smoothly in between"""
    what = call_text("llama3_inv_freq", *args)
    got = submission.llama3_inv_freq(*args)
    expect_table(got, ref_llama3(*args), what, hint=mistakes_of(got, llama_mistakes(*args)))


@exercise("scaling.llama3_inv_freq")
def test_llama3_defaults(submission):
    """defaults to Llama 3.1's settings (factor 8, 8192 tokens, low 1, high 4)"""
    what = call_text("llama3_inv_freq", 128, 500000.0)
    got = submission.llama3_inv_freq(128, 500000.0)
    expected = ref_llama3(128, 500000.0)
    hint = mistakes_of(got, llama_mistakes(128, 500000.0))
    if not hint and not close_table(got, expected):
        every = (128, 500000.0, 8.0, 8192, 1.0, 4.0)
        try:
            right_when_given = close_table(submission.llama3_inv_freq(*every), expected)
        except Exception:  # noqa: BLE001 - the call with every argument fails too: no diagnosis
            right_when_given = False
        if right_when_given:
            hint = Hint(f"{call_text('llama3_inv_freq', *every)} is right: your defaults are not Llama 3.1's "
                        "(factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0).",
                        "wrong-defaults")
    expect_table(got, expected, what, hint=hint)


@exercise("scaling.llama3_inv_freq")
@pytest.mark.robustness
@OTHER_PARAMETERS
def test_llama3_dtype(submission):
    """returns float32 of shape (d/2,)"""
    what = call_text("llama3_inv_freq", 16, 10000.0, 4.0, 256)
    got = submission.llama3_inv_freq(16, 10000.0, 4.0, 256)
    expect_shape(got, (8,), what)
    expect_dtype(got, torch.float32, what)


@exercise("scaling.llama3_inv_freq")
@pytest.mark.parametrize("args,name", [((7, 10000.0, 2.0, 1024), "d"), ((8, 10000.0, 0.5, 1024), "factor"),
                                       ((8, 10000.0, 2.0, 0), "original_max_len")])
@pytest.mark.uses("argument_checks")
def test_llama3_bad_arguments(submission, args, name):
    """rejects an odd d, factor < 1, original_max_len < 1 with a ValueError naming it"""
    expect_value_error(submission.llama3_inv_freq, *args, mentions=name, what=call_text("llama3_inv_freq", *args))


# ---------------------------------------------------------------- rope_from_config
# Configurations of real model families, written out as their config.json files write them
# (the long lists of Phi-3's LongRoPE factors are made up here, with the real list lengths).
def _phi3_factors(n, top):
    """n factors rising from ~1 (fast pairs) to `top` (slow pairs), the shape Phi-3's lists have."""
    return [round(1.0 + (top - 1.0) * (k / (n - 1)) ** 3, 4) for k in range(n)]


MODEL_CONFIGS = dict([  # (name, config) pairs; the rope dicts are written with dict() like the rest
    ("Mistral-7B-v0.1", dict(hidden_size=4096, num_attention_heads=32, head_dim=128, rope_theta=10000.0,
                             max_position_embeddings=32768, rope_scaling=None)),
    ("Llama-3.1-8B", dict(hidden_size=4096, num_attention_heads=32, rope_theta=500000.0,
                          max_position_embeddings=131072,
                          rope_scaling=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                            original_max_position_embeddings=8192, rope_type="llama3"))),
    ("Qwen2.5-7B-yarn", dict(hidden_size=3584, num_attention_heads=28, rope_theta=1000000.0,
                             max_position_embeddings=32768,
                             rope_scaling=dict(factor=4.0, original_max_position_embeddings=32768, type="yarn"))),
    ("DeepSeek-V2-Lite", dict(hidden_size=2048, num_attention_heads=16, rope_theta=10000.0,
                              max_position_embeddings=163840,
                              rope_scaling=dict(beta_fast=32, beta_slow=1, factor=40, mscale=0.707,
                                                mscale_all_dim=0.707, original_max_position_embeddings=4096,
                                                type="yarn"))),
    ("Phi-3-mini-128k", dict(hidden_size=3072, num_attention_heads=32, rope_theta=10000.0,
                             max_position_embeddings=131072, original_max_position_embeddings=4096,
                             rope_scaling=dict(type="longrope", short_factor=_phi3_factors(48, 1.3),
                                               long_factor=_phi3_factors(48, 60.0)))),
    ("GPT-NeoX-20B", dict(hidden_size=6144, num_attention_heads=64, rope_theta=10000.0, partial_rotary_factor=0.25,
                          max_position_embeddings=2048, rope_scaling=None)),
])
DEEPSEEK_ROPE_HEAD_DIM = 64  # DeepSeek rotates only qk_rope_head_dim features of each head


def ref_rope_from_config(config, head_dim=None, seq_len=None, *, ignore_partial=False, ignore_legacy_type=False,
                         ignore_mscale=False, no_original=False, always_long=False, ignore_head_dim=False):
    """(inv_freq float64, attention scaling) from a plain config dict, as transformers reads it."""
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    kind = rope.get("rope_type") or (None if ignore_legacy_type else rope.get("type")) or "default"
    base = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    partial = 1.0 if ignore_partial else rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0))
    if head_dim is None or ignore_head_dim:
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    d = int(head_dim * partial)
    max_len = config["max_position_embeddings"]
    original = (config.get("original_max_position_embeddings") or rope.get("original_max_position_embeddings")
                or max_len)
    if no_original:
        original = max_len
    if kind == "default":
        return ref_theta(d, base), 1.0
    if kind == "linear":
        return ref_theta(d, base) / rope["factor"], 1.0
    if kind == "dynamic":
        return ref_dynamic(d, base, rope["factor"], max_len if seq_len is None else seq_len, max_len), 1.0
    if kind == "llama3":
        return ref_llama3(d, base, rope["factor"], original, rope["low_freq_factor"], rope["high_freq_factor"]), 1.0
    factor = rope.get("factor") or max_len / original
    if kind == "yarn":
        table = ref_yarn(d, base, factor, original, rope.get("beta_fast") or 32.0, rope.get("beta_slow") or 1.0,
                         rope.get("truncate", True))

        def m(scale, mscale=1.0):
            return 0.1 * mscale * math.log(scale) + 1.0 if scale > 1 else 1.0

        if rope.get("attention_factor") is not None:
            return table, rope["attention_factor"]
        if rope.get("mscale") and rope.get("mscale_all_dim") and not ignore_mscale:
            return table, m(factor, rope["mscale"]) / m(factor, rope["mscale_all_dim"])
        return table, m(factor)
    if kind == "longrope":
        use_long = always_long or (seq_len is not None and seq_len > original)
        ext = np.asarray(rope["long_factor" if use_long else "short_factor"], dtype=np.float64)
        att = rope.get("attention_factor")
        if att is None:
            att = math.sqrt(1 + math.log(factor) / math.log(original)) if factor > 1 else 1.0
        return ref_theta(d, base) / ext, att
    raise ValueError(kind)


def config_mistakes(config, head_dim=None, seq_len=None):
    variants = {
        mistake("config-kind-and-size", "the table for the whole head: only int(head_dim * partial_rotary_factor) "
                "features rotate, so the table has that many / 2 frequencies"): dict(ignore_partial=True),
        mistake("config-kind-and-size", "the table of plain RoPE: the rope dict names its kind under the legacy key "
                "'type' in older configs (read 'rope_type', else 'type')"): dict(ignore_legacy_type=True),
        mistake("config-lengths", "max_position_embeddings used where the method needs "
                "original_max_position_embeddings (the pretraining length)"): dict(no_original=True),
        mistake("config-lengths", "long_factor used at a short length: LongRoPE takes short_factor unless seq_len > "
                "original_max_position_embeddings"): dict(always_long=True),
        mistake("config-kind-and-size", "the head size from the config although head_dim was passed"):
            dict(ignore_head_dim=True),
    }
    return {k: ref_rope_from_config(config, head_dim, seq_len, **v)[0] for k, v in variants.items()}


def attention_mistakes(config, head_dim=None, seq_len=None):
    variants = {
        mistake("config-mscale", "0.1 ln(factor) + 1 with mscale and mscale_all_dim ignored: with both set the "
                "scaling is (0.1 mscale ln(factor) + 1) / (0.1 mscale_all_dim ln(factor) + 1)"):
            dict(ignore_mscale=True),
        mistake("config-kind-and-size", "the attention scaling of plain RoPE (1.0): the rope dict names its kind "
                "under the legacy key 'type' in older configs"): dict(ignore_legacy_type=True),
        mistake("config-lengths", "max_position_embeddings used where the method needs "
                "original_max_position_embeddings (the pretraining length)"): dict(no_original=True),
    }
    return {k: [ref_rope_from_config(config, head_dim, seq_len, **v)[1]] for k, v in variants.items()}


def expect_config_result(got, config, what, head_dim=None, seq_len=None):
    if not (isinstance(got, tuple) and len(got) == 2):
        raise Mismatch(f"{what} returned {type(got).__name__}, expected a tuple (inv_freq, attention_scaling)",
                       "not-a-pair")
    table, att = got
    want_table, want_att = ref_rope_from_config(config, head_dim, seq_len)
    hint = mistakes_of(table, config_mistakes(config, head_dim, seq_len))
    if isinstance(table, torch.Tensor) and tuple(table.shape) != want_table.shape:
        raise Mismatch(f"{what}[0] has shape {tuple(table.shape)}, expected {want_table.shape} "
                       f"(rotary_dim/2 frequencies). {hint}".rstrip(), hint.mistake)
    expect_table(table, want_table, what + "[0]", hint=hint)
    att = expect_number(att, what + "[1]")
    expect_close(t64([att]), t64([want_att]), what + "[1] (attention scaling)", atol=0, rtol=1e-6,
                 hint=mistakes_of(t64([att]), attention_mistakes(config, head_dim, seq_len)))


def _config_call(name, head_dim=None, seq_len=None):
    extra = {k: v for k, v in (("head_dim", head_dim), ("seq_len", seq_len)) if v is not None}
    return call_text("rope_from_config", name, **extra).replace(repr(name), f"<{name} config>")


@exercise("scaling.rope_from_config", weight=2)
@pytest.mark.parametrize("name", ["Mistral-7B-v0.1", "Llama-3.1-8B", "Qwen2.5-7B-yarn", "Phi-3-mini-128k",
                                  "GPT-NeoX-20B"])
def test_config_real_models(submission, name):
    """reads real model families' configs (plain RoPE, llama3, yarn, longrope, partial rotary)"""
    config = MODEL_CONFIGS[name]
    expect_config_result(submission.rope_from_config(config), config, _config_call(name))


@exercise("scaling.rope_from_config", weight=2)
def test_config_deepseek_mscale(submission):
    """DeepSeek-style yarn: head_dim argument, mscale / mscale_all_dim in the attention scaling"""
    config = MODEL_CONFIGS["DeepSeek-V2-Lite"]
    what = _config_call("DeepSeek-V2-Lite", head_dim=DEEPSEEK_ROPE_HEAD_DIM)
    expect_config_result(submission.rope_from_config(config, DEEPSEEK_ROPE_HEAD_DIM), config, what,
                         head_dim=DEEPSEEK_ROPE_HEAD_DIM)
    uneven = dict(config, rope_scaling=dict(config["rope_scaling"], mscale=1.0, mscale_all_dim=0.5))
    what = _config_call("yarn, mscale 1.0, mscale_all_dim 0.5", head_dim=DEEPSEEK_ROPE_HEAD_DIM)
    expect_config_result(submission.rope_from_config(uneven, DEEPSEEK_ROPE_HEAD_DIM), uneven, what,
                         head_dim=DEEPSEEK_ROPE_HEAD_DIM)


@exercise("scaling.rope_from_config")
def test_config_yarn_options(submission):
    """yarn: an explicit attention_factor wins; beta_fast, beta_slow and truncate are read"""
    config = dict(hidden_size=256, num_attention_heads=4, rope_theta=10000.0, max_position_embeddings=8192,
                  rope_parameters=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=2048,
                                       beta_fast=16.0, beta_slow=2.0, truncate=False, attention_factor=1.25))
    expect_config_result(submission.rope_from_config(config), config, _config_call("yarn with options"))


@exercise("scaling.rope_from_config")
def test_config_longrope_lengths(submission):
    """longrope: short_factor up to original_max_position_embeddings, long_factor beyond"""
    config = MODEL_CONFIGS["Phi-3-mini-128k"]
    for seq_len in (100, 4096, 4097, 131072):
        what = _config_call("Phi-3-mini-128k", seq_len=seq_len)
        expect_config_result(submission.rope_from_config(config, seq_len=seq_len), config, what, seq_len=seq_len)


@exercise("scaling.rope_from_config")
def test_config_linear_dynamic_legacy(submission):
    """linear and dynamic, with the legacy 'type' key and with 'rope_parameters' (theta and partial rotary inside)"""
    cases = dict([
        ("linear, legacy type", dict(hidden_size=4096, num_attention_heads=32, rope_theta=10000.0,
                                     max_position_embeddings=16384, rope_scaling=dict(type="linear", factor=4.0))),
        ("dynamic, rope_parameters", dict(hidden_size=512, num_attention_heads=8, max_position_embeddings=2048,
                                          rope_parameters=dict(rope_type="dynamic", factor=2.0, rope_theta=50000.0,
                                                               partial_rotary_factor=0.5))),
    ])
    for name, config in cases.items():
        expect_config_result(submission.rope_from_config(config), config, _config_call(name))
    config = cases["dynamic, rope_parameters"]
    expect_config_result(submission.rope_from_config(config, seq_len=6000), config,
                         _config_call("dynamic, rope_parameters", seq_len=6000), seq_len=6000)


@exercise("scaling.rope_from_config")
@pytest.mark.robustness
def test_config_types(submission):
    """returns a float32 table of rotary_dim/2 and a Python float"""
    config = MODEL_CONFIGS["Qwen2.5-7B-yarn"]
    table, att = submission.rope_from_config(config)
    what = _config_call("Qwen2.5-7B-yarn")
    expect_shape(table, (64,), what + "[0]")
    expect_dtype(table, torch.float32, what + "[0]")
    expect_number(att, what + "[1]", strict=True)
