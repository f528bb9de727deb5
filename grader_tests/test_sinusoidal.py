"""Hidden suite, section 3 (sinusoidal encodings).

References are independent of solutions/: the encoding is written out from the paper's
formula in float64 NumPy, PE[..., 2k] = sin(p * base^(-2k/d)), PE[..., 2k+1] = cos(same),
and the offset matrix from the angle-addition formulas, block by block.
"""
import math

import numpy as np
import pytest
import torch

from course.checking import (Hint, Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_shape,
                             expect_value_error)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise
F32 = dict(atol=1e-5, rtol=1e-5)
LARGE_F32 = dict(atol=2e-4, rtol=1e-4)  # float32 angles at positions up to ~2000


def ref_angles(positions, d, base=10000.0, exponent=None):
    """p * base^(-2k/d) in float64; `exponent` lets a diagnosis use a wrong exponent."""
    p = np.asarray(positions, dtype=np.float64)
    expo = np.arange(0, d, 2, dtype=np.float64) / d if exponent is None else exponent
    return p[..., None] * float(base) ** (-expo)


def interleave(first, second):
    return torch.from_numpy(np.stack((first, second), axis=-1).reshape(*first.shape[:-1], -1))


def ref_pe(positions, d, base=10000.0):
    a = ref_angles(positions, d, base)
    return interleave(np.sin(a), np.cos(a))


def pe_mistakes(positions, d, base=10000.0):
    """Outputs of mistakes learners make, by name, for closest_mistake."""
    a = ref_angles(positions, d, base)
    return {
        mistake("pairing-convention", "the concatenated layout [sin ..., sin, cos ..., cos]; this course "
                "interleaves: feature 2k is sin and feature 2k+1 is cos of the same angle"):
            torch.from_numpy(np.concatenate((np.sin(a), np.cos(a)), -1)),
        mistake("exponent-k-over-d", "frequencies base^(-k/d) with k = 0..d/2-1: the exponent is 2k/d (k counts "
                "pairs, 2k is the even feature index)"):
            (lambda b: interleave(np.sin(b), np.cos(b)))(ref_angles(positions, d, base, np.arange(d // 2) / d)),
        mistake("sin-cos-swapped", "sine and cosine swapped: the even feature 2k holds the sine"):
            interleave(np.cos(a), np.sin(a)),
        mistake("frequency-vs-wavelength", "frequencies base^(+2k/d): the angle is p divided by base^(2k/d)"):
            (lambda b: interleave(np.sin(b), np.cos(b)))(ref_angles(positions, d, base, -np.arange(0, d, 2) / d)),
        mistake("default-argument", "the default base 10000 instead of the base passed in"): ref_pe(positions, d),
    }


def half_angles_pe(positions, d, base=10000.0):
    """The encoding with positions, frequencies and their product rounded to float16."""
    p = torch.as_tensor(np.asarray(positions, dtype=np.float64)).half()
    inv_freq = torch.from_numpy(float(base) ** (-np.arange(0, d, 2, dtype=np.float64) / d)).half()
    a = (p[..., None] * inv_freq).double().numpy()
    return interleave(np.sin(a), np.cos(a))


def pe_hint(got, positions, d, base=10000.0):
    """Name the mistake behind a wrong encoding, if it is a known one."""
    return closest_mistake(got, pe_mistakes(positions, d, base)) or closest_mistake(got, {
        mistake("half-precision", "angles computed in float16 (positions x frequencies lose precision in half "
                "precision); compute them in float32 or wider, float64 is safest"):
            half_angles_pe(positions, d, base)}, atol=3e-3)


# ---------------------------------------------------------------- sinusoidal_encoding
@exercise("sinusoidal.sinusoidal_encoding", weight=2)
def test_encoding_small(submission):
    """puts sin(p w_k) in feature 2k and cos(p w_k) in feature 2k+1"""
    positions = torch.tensor([0, 1, 2])
    what = call_text("sinusoidal_encoding", positions, 4)
    got = submission.sinusoidal_encoding(positions, 4)
    expect_close(got, ref_pe(positions, 4), what, **F32, hint=pe_hint(got, positions, 4))


@exercise("sinusoidal.sinusoidal_encoding")
def test_encoding_base_and_fractional(submission):
    """accepts fractional positions and another base"""
    positions = torch.tensor([0.5, 3.25, 10.0])
    what = call_text("sinusoidal_encoding", positions, 6, base=100.0)
    got = submission.sinusoidal_encoding(positions, 6, base=100.0)
    expect_close(got, ref_pe(positions, 6, base=100.0), what, **F32, hint=pe_hint(got, positions, 6, base=100.0))


@exercise("sinusoidal.sinusoidal_encoding")
def test_encoding_shapes(submission):
    """adds a feature axis to positions of any shape"""
    positions = torch.tensor([[0, 5, 9], [1, 2, 3]])
    what = call_text("sinusoidal_encoding", positions, 8)
    got = submission.sinusoidal_encoding(positions, 8)
    expect_shape(got, (2, 3, 8), what)
    expect_close(got, ref_pe(positions, 8), what, **F32, hint=pe_hint(got, positions, 8))
    scalar = torch.tensor(7)
    got = submission.sinusoidal_encoding(scalar, 8)
    expect_shape(got, (8,), call_text("sinusoidal_encoding", scalar, 8) + " (a 0-d position)")


@exercise("sinusoidal.sinusoidal_encoding")
def test_encoding_large_positions(submission):
    """stays accurate at positions in the thousands"""
    positions = torch.tensor([0.0, 700.0, 1500.0, 2047.0])
    what = call_text("sinusoidal_encoding", positions, 16)
    got = submission.sinusoidal_encoding(positions, 16)
    small = submission.sinusoidal_encoding(torch.tensor([0.0, 1.0, 2.0]), 16)
    hint = pe_hint(got, positions, 16)
    if not hint and torch.allclose(small.double(), ref_pe([0, 1, 2], 16), atol=5e-3):
        hint = Hint("Nearly right at small positions but not here: the angles p * w lose precision, probably "
                    "computed in float16/bfloat16. Compute them in float32 or wider (float64 is safest).",
                    "half-precision")
    expect_close(got, ref_pe(positions, 16), what, **LARGE_F32, hint=hint)


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32])
def test_encoding_float32(submission, dtype):
    """returns float32 for integer and float32 positions"""
    positions = torch.tensor([0, 3, 8]).to(dtype)
    what = call_text("sinusoidal_encoding", positions, 4)
    got = submission.sinusoidal_encoding(positions, 4)
    expect_dtype(got, torch.float32, what)
    expect_close(got, ref_pe(positions, 4), what, **F32)


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.robustness
def test_encoding_float64(submission):
    """returns float64 for float64 positions (held to float32 accuracy, as the contract says)"""
    positions = torch.tensor([0.25, 1000.0, 2047.5], dtype=torch.float64)
    what = call_text("sinusoidal_encoding", positions, 8)
    got = submission.sinusoidal_encoding(positions, 8)
    expect_dtype(got, torch.float64, what)
    expect_close(got, ref_pe(positions, 8), what, **LARGE_F32, hint="Compute the angles in float32 or wider.")


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_encoding_half_positions(submission, dtype):
    """returns float32 for float16/bfloat16 positions, computed in float32 or wider"""
    positions = torch.tensor([0.0, 1.0, 96.0, 250.0]).to(dtype)     # exactly representable in both
    what = call_text("sinusoidal_encoding", positions, 8)
    got = submission.sinusoidal_encoding(positions, 8)
    expect_dtype(got, torch.float32, what)
    expect_close(got, ref_pe(positions.float(), 8), what, atol=1e-4, rtol=1e-4,
                 hint="Convert the positions to float32 or float64 before multiplying by the frequencies.")


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.robustness
def test_encoding_device(submission):
    """keeps the output on the positions' device"""
    same_on_second_device(submission, submission.sinusoidal_encoding, torch.arange(3), 4,
                          hint="Create the frequencies on positions.device.")


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.robustness
def test_encoding_device_fractional(submission):
    """keeps the output on the positions' device with fractional (B, T) positions"""
    same_on_second_device(submission, submission.sinusoidal_encoding, torch.tensor([[0.5, 7.0]]), 6,
                          hint="Create the frequencies on positions.device.")


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.robustness
def test_encoding_not_in_place(submission):
    """leaves the positions unchanged"""
    submission.sinusoidal_encoding(torch.tensor([1.0, 2.0, 3.0]), 4)
    if submission.mutated_inputs():
        raise Mismatch(f"sinusoidal_encoding changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("sinusoidal.sinusoidal_encoding")
@pytest.mark.uses("argument_checks")
def test_encoding_odd_d(submission):
    """rejects an odd d with a ValueError naming d"""
    positions = torch.arange(3)
    expect_value_error(submission.sinusoidal_encoding, positions, 5, mentions="d",
                       what=call_text("sinusoidal_encoding", positions, 5))


# ---------------------------------------------------------------- sinusoidal_table
def expect_table(submission, got, t, d, base, what):
    """The table must hold the encodings of 0..t-1. If it equals the learner's own (wrong)
    encoding of 0..t-1, the mistake is in sinusoidal_encoding and is graded there only."""
    expected = ref_pe(np.arange(t), d, base)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
            torch.allclose(got.double(), expected, **F32):
        return
    try:
        own = submission.sinusoidal_encoding(torch.arange(t), d, base)
    except Exception:  # noqa: BLE001 - their encoding is broken: judge the table on its own
        own = None
    if isinstance(own, torch.Tensor) and isinstance(got, torch.Tensor) and own.shape == got.shape and \
            torch.allclose(got.double(), own.double(), atol=1e-6):
        return
    hint = closest_mistake(got, {
        mistake("count-from-one", "positions 1..t; the table starts at position 0"):
            ref_pe(np.arange(1, t + 1), d, base),
        mistake("default-argument", "the default base 10000 instead of the base passed in"): ref_pe(np.arange(t), d),
        **pe_mistakes(np.arange(t), d, base),
    })
    expect_close(got, expected, what, **F32, hint=hint)


@exercise("sinusoidal.sinusoidal_table", weight=2)
def test_table_small(submission):
    """row p is the encoding of position p, from p = 0"""
    what = call_text("sinusoidal_table", 3, 4)
    got = submission.sinusoidal_table(3, 4)
    expect_shape(got, (3, 4), what)
    expect_table(submission, got, 3, 4, 10000.0, what)


@exercise("sinusoidal.sinusoidal_table")
def test_table_base(submission):
    """passes base through"""
    what = call_text("sinusoidal_table", 6, 8, base=50.0)
    got = submission.sinusoidal_table(6, 8, base=50.0)
    expect_shape(got, (6, 8), what)
    expect_table(submission, got, 6, 8, 50.0, what)


@exercise("sinusoidal.sinusoidal_table")
@pytest.mark.robustness
def test_table_dtype(submission):
    """returns float32"""
    got = submission.sinusoidal_table(4, 6)
    expect_dtype(got, torch.float32, "sinusoidal_table(4, 6)")


@exercise("sinusoidal.sinusoidal_table")
def test_table_one_row(submission):
    """a table of length 1 holds position 0 only"""
    got = submission.sinusoidal_table(1, 4)
    expect_shape(got, (1, 4), "sinusoidal_table(1, 4)")
    expect_table(submission, got, 1, 4, 10000.0, "sinusoidal_table(1, 4)")


@exercise("sinusoidal.sinusoidal_table")
@pytest.mark.parametrize("t", [0, -2])
@pytest.mark.uses("argument_checks")
def test_table_bad_length(submission, t):
    """rejects a length below 1 with a ValueError naming t"""
    expect_value_error(submission.sinusoidal_table, t, 4, mentions="t", what=call_text("sinusoidal_table", t, 4))


# ---------------------------------------------------------------- sinusoidal_offset_matrix
def ref_offset(k, d, base=10000.0, layout="interleaved", exponent=None):
    """M with PE(p + k) = M PE(p): per pair, [[cos, sin], [-sin, cos]] of k * w_j."""
    a = ref_angles([float(k)], d, base, exponent)[0]
    M = np.zeros((d, d))
    for j, angle in enumerate(a):
        s, c = (2 * j, 2 * j + 1) if layout == "interleaved" else (j, j + d // 2)
        M[s, s], M[s, c], M[c, s], M[c, c] = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
    return torch.from_numpy(M)


def offset_mistakes(k, d, base=10000.0):
    return {
        mistake("matrix-transposed", "the transpose of M, the standard rotation matrix [[cos, -sin], [sin, cos]] "
                "per pair. Here the pair is (sin, cos), so a shift by +k needs [[cos, sin], [-sin, cos]]; the "
                "transposed matrix moves positions backwards"): ref_offset(k, d, base).T,
        mistake("pairing-convention", "blocks on pairs (j, j + d/2), the concatenated layout; this course "
                "interleaves (2j, 2j + 1)"): ref_offset(k, d, base, layout="concatenated"),
        mistake("exponent-k-over-d", "frequencies base^(-j/d): the exponent is 2j/d"):
            ref_offset(k, d, base, exponent=np.arange(d // 2) / d),
    }


@exercise("sinusoidal.sinusoidal_offset_matrix", weight=2)
def test_offset_small(submission):
    """holds a [[cos, sin], [-sin, cos]] block of k w_j for each pair"""
    what = call_text("sinusoidal_offset_matrix", 1, 4)
    got = submission.sinusoidal_offset_matrix(1, 4)
    hint = closest_mistake(got, offset_mistakes(1, 4))
    expect_close(got, ref_offset(1, 4), what, **F32, hint=hint)


@exercise("sinusoidal.sinusoidal_offset_matrix", weight=2)
@pytest.mark.parametrize("k", [3, -2, 2.5])
def test_offset_shifts_positions(submission, k):
    """maps PE(p) to PE(p + k) for every p"""
    d, base = 8, 100.0
    what = call_text("sinusoidal_offset_matrix", k, d, base=base)
    M = submission.sinusoidal_offset_matrix(k, d, base=base)
    expect_shape(M, (d, d), what)
    positions = np.array([0.0, 1.0, 7.0, 40.5])
    got = ref_pe(positions, d, base) @ M.double().T            # row p: M @ PE(p)
    hint = closest_mistake(M, offset_mistakes(k, d, base))
    expect_close(got, ref_pe(positions + k, d, base), f"{what} @ PE(p) for p in {positions.tolist()}", **F32,
                 hint=hint or Hint("Row p should be PE(p + k).", "offset-direction"))


@exercise("sinusoidal.sinusoidal_offset_matrix")
def test_offset_zero_and_composition(submission):
    """M_0 is the identity and M_a M_b = M_(a+b)"""
    d = 6
    expect_close(submission.sinusoidal_offset_matrix(0, d), torch.eye(d), "sinusoidal_offset_matrix(0, 6)", **F32)
    Ma, Mb = submission.sinusoidal_offset_matrix(4, d), submission.sinusoidal_offset_matrix(9, d)
    expect_close(Ma.double() @ Mb.double(), ref_offset(13, d),
                 "sinusoidal_offset_matrix(4, 6) @ sinusoidal_offset_matrix(9, 6) compared with M_13", **F32)


@exercise("sinusoidal.sinusoidal_offset_matrix")
@pytest.mark.robustness
def test_offset_dtype(submission):
    """returns a float32 (d, d) matrix"""
    got = submission.sinusoidal_offset_matrix(2, 6)
    expect_shape(got, (6, 6), "sinusoidal_offset_matrix(2, 6)")
    expect_dtype(got, torch.float32, "sinusoidal_offset_matrix(2, 6)")


@exercise("sinusoidal.sinusoidal_offset_matrix")
@pytest.mark.uses("argument_checks")
def test_offset_odd_d(submission):
    """rejects an odd d with a ValueError naming d"""
    expect_value_error(submission.sinusoidal_offset_matrix, 1, 5, mentions="d",
                       what="sinusoidal_offset_matrix(1, 5)")


# ---------------------------------------------------------------- sinusoidal_wavelengths
def ref_wavelengths(d, base=10000.0):
    return torch.from_numpy(2 * math.pi * float(base) ** (np.arange(0, d, 2) / d))


def wavelength_mistakes(d, base=10000.0):
    return {
        mistake("frequency-vs-wavelength", "base^(2k/d) without the factor 2*pi: that is positions per radian; a "
                "full period is 2*pi radians"): ref_wavelengths(d, base) / (2 * math.pi),
        mistake("exponent-k-over-d", "the exponent k/d; it is 2k/d with k counting pairs"):
            torch.from_numpy(2 * math.pi * float(base) ** (np.arange(d // 2) / d)),
        mistake("frequency-vs-wavelength", "the angular frequencies base^(-2k/d); wavelengths are 2*pi divided by "
                "them"): torch.from_numpy(float(base) ** (-np.arange(0, d, 2) / d)),
        mistake("frequency-vs-wavelength", "the frequencies in cycles per position, base^(-2k/d) / (2*pi); "
                "wavelengths are their inverses"): 1 / ref_wavelengths(d, base),
    }


@exercise("sinusoidal.sinusoidal_wavelengths", weight=2)
def test_wavelengths_small(submission):
    """gives 2*pi*base^(2k/d) for each pair k"""
    what = call_text("sinusoidal_wavelengths", 4)
    got = submission.sinusoidal_wavelengths(4)
    hint = closest_mistake(got, wavelength_mistakes(4))
    expect_close(got, ref_wavelengths(4), what, atol=1e-6, rtol=1e-5, hint=hint)


@exercise("sinusoidal.sinusoidal_wavelengths")
def test_wavelengths_base(submission):
    """passes base through"""
    what = call_text("sinusoidal_wavelengths", 8, base=500.0)
    got = submission.sinusoidal_wavelengths(8, base=500.0)
    hint = closest_mistake(got, {mistake("default-argument", "the default base 10000 instead of the base passed in"):
                                     ref_wavelengths(8),
                                 **wavelength_mistakes(8, 500.0)})
    expect_close(got, ref_wavelengths(8, 500.0), what, atol=1e-6, rtol=1e-5, hint=hint)


@exercise("sinusoidal.sinusoidal_wavelengths")
def test_wavelengths_period(submission):
    """pair k repeats after its wavelength"""
    d = 6
    lam = submission.sinusoidal_wavelengths(d).double()
    expect_shape(lam, (d // 2,), call_text("sinusoidal_wavelengths", d))
    for k, wavelength in enumerate(lam.tolist()):
        a = ref_angles([3.0, 3.0 + wavelength], d)[:, k]
        if abs(math.sin(a[1]) - math.sin(a[0])) > 1e-4 or abs(math.cos(a[1]) - math.cos(a[0])) > 1e-4:
            raise AssertionError(f"sinusoidal_wavelengths({d})[{k}] = {wavelength:.6g}, but pair {k} at positions 3 and "
                                 f"3 + {wavelength:.6g} has angles {a[0]:.4g} and {a[1]:.4g} rad: not one full turn apart")


@exercise("sinusoidal.sinusoidal_wavelengths")
@pytest.mark.robustness
def test_wavelengths_dtype(submission):
    """returns float32 of shape (d/2,)"""
    got = submission.sinusoidal_wavelengths(16)
    expect_shape(got, (8,), "sinusoidal_wavelengths(16)")
    expect_dtype(got, torch.float32, "sinusoidal_wavelengths(16)")


@exercise("sinusoidal.sinusoidal_wavelengths")
@pytest.mark.uses("argument_checks")
def test_wavelengths_odd_d(submission):
    """rejects an odd d with a ValueError naming d"""
    expect_value_error(submission.sinusoidal_wavelengths, 7, mentions="d", what="sinusoidal_wavelengths(7)")
