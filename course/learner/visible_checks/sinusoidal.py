"""Visible checks for section 3 (sinusoidal encodings)."""
from __future__ import annotations

import math

import torch

from course.checking import call_text, expect_close, expect_dtype, expect_shape, expect_value_error
from course.learner.visible_checks import visible


def _pe(p: float, d: int, base: float = 10000.0) -> list[float]:
    """The encoding of one position written out from the definition, in float64 Python math."""
    out = []
    for k in range(d // 2):
        angle = p / base ** (2 * k / d)
        out += [math.sin(angle), math.cos(angle)]
    return out


# ---- sinusoidal_wavelengths ------------------------------------------------------------

@visible("sinusoidal.sinusoidal_wavelengths", "the fastest pair repeats every 2*pi positions")
def _(ns):
    what = call_text("sinusoidal_wavelengths", 8)
    got = ns.sinusoidal_wavelengths(8)
    expect_shape(got, (4,), what)
    expect_dtype(got, torch.float32, what)
    # pair 0 has angular frequency base^0 = 1, so sin(p) repeats after 2*pi positions
    expect_close(got[0], torch.tensor(2 * math.pi), what + "[0]",
                 hint="A wavelength is 2*pi divided by the angular frequency.")


@visible("sinusoidal.sinusoidal_wavelengths", "each wavelength is base^(2/d) times the previous one")
def _(ns):
    d, base = 6, 100.0
    what = call_text("sinusoidal_wavelengths", d, base=base)
    got = ns.sinusoidal_wavelengths(d, base=base)
    expected = torch.tensor([2 * math.pi * base ** (2 * k / d) for k in range(d // 2)])
    expect_close(got, expected, what, rtol=1e-5, hint="Wavelength k is 2*pi*base^(2k/d).")


@visible("sinusoidal.sinusoidal_wavelengths", "odd d is a ValueError naming d")
def _(ns):
    expect_value_error(ns.sinusoidal_wavelengths, 7, mentions="d", what=call_text("sinusoidal_wavelengths", 7))


# ---- sinusoidal_encoding ---------------------------------------------------------------

@visible("sinusoidal.sinusoidal_encoding", "position 0 is (sin 0, cos 0) = (0, 1) in every pair")
def _(ns):
    positions = torch.tensor([0])
    what = call_text("sinusoidal_encoding", positions, 6)
    got = ns.sinusoidal_encoding(positions, 6)
    expect_shape(got, (1, 6), what)
    expect_close(got, torch.tensor([[0.0, 1.0] * 3]), what,
                 hint="Features alternate: sin in even features, cos in odd ones.")


@visible("sinusoidal.sinusoidal_encoding", "pair k holds sin and cos of p * base^(-2k/d), also for fractional p")
def _(ns):
    positions = torch.tensor([1.0, 2.5, 7.0])
    d = 6
    what = call_text("sinusoidal_encoding", positions, d)
    got = ns.sinusoidal_encoding(positions, d)
    expected = torch.tensor([_pe(p, d) for p in positions.tolist()])
    expect_close(got, expected, what, atol=1e-5,
                 hint="Feature 2k is sin(p / base^(2k/d)) and feature 2k+1 is cos of the same angle.")


@visible("sinusoidal.sinusoidal_encoding", "keeps the positions' shape; float32 out, float64 for float64 positions")
def _(ns):
    positions = torch.arange(6).reshape(2, 3)
    what = call_text("sinusoidal_encoding", positions, 4)
    got = ns.sinusoidal_encoding(positions, 4)
    expect_shape(got, (2, 3, 4), what)
    expect_dtype(got, torch.float32, what)
    positions64 = torch.tensor([0.5, 3.0], dtype=torch.float64)
    what64 = call_text("sinusoidal_encoding", positions64, 4)
    got64 = ns.sinusoidal_encoding(positions64, 4)
    expect_dtype(got64, torch.float64, what64)
    expect_close(got64, torch.tensor([_pe(0.5, 4), _pe(3.0, 4)], dtype=torch.float64), what64, atol=1e-7)


@visible("sinusoidal.sinusoidal_encoding", "odd d is a ValueError naming d")
def _(ns):
    positions = torch.arange(3)
    expect_value_error(ns.sinusoidal_encoding, positions, 5, mentions="d",
                       what=call_text("sinusoidal_encoding", positions, 5))


# ---- sinusoidal_table ------------------------------------------------------------------

def _expect_table(ns, got, t, d, base, what):
    """The encodings of 0..t-1; or, as the hidden suite judges it, the learner's own encoding of
    them: a mistake in sinusoidal_encoding is named by its own checks, not blamed on the table."""
    expected = torch.tensor([_pe(p, d, base) for p in range(t)])
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.allclose(got.double(),
                                                                                               expected.double(), atol=1e-5):
        try:
            own = ns.sinusoidal_encoding(torch.arange(t), d, base)
        except Exception:  # noqa: BLE001 - their encoding is broken: judge the table on its own
            own = None
        if isinstance(own, torch.Tensor) and own.shape == got.shape and torch.allclose(got.double(), own.double(),
                                                                                       atol=1e-6):
            return
    expect_close(got, expected, what, atol=1e-5)


@visible("sinusoidal.sinusoidal_table", "row p is the encoding of position p")
def _(ns):
    t, d = 5, 4
    what = call_text("sinusoidal_table", t, d)
    got = ns.sinusoidal_table(t, d)
    expect_shape(got, (t, d), what)
    expect_dtype(got, torch.float32, what)
    _expect_table(ns, got, t, d, 10000.0, what)


@visible("sinusoidal.sinusoidal_table", "passes base through")
def _(ns):
    t, d, base = 4, 4, 10.0
    what = call_text("sinusoidal_table", t, d, base=base)
    _expect_table(ns, ns.sinusoidal_table(t, d, base=base), t, d, base, what)


# ---- sinusoidal_offset_matrix ----------------------------------------------------------

@visible("sinusoidal.sinusoidal_offset_matrix", "M_k moves every position forward by k")
def _(ns):
    k, d = 3, 6
    what = call_text("sinusoidal_offset_matrix", k, d)
    M = ns.sinusoidal_offset_matrix(k, d)
    expect_shape(M, (d, d), what)
    for p in (0.0, 1.0, 10.0):
        got = M.double() @ torch.tensor(_pe(p, d), dtype=torch.float64)
        expect_close(got, torch.tensor(_pe(p + k, d)), f"{what} @ PE({p:g})", atol=1e-5,
                     hint=f"It should equal PE({p + k:g}). Expand sin(a+b) and cos(a+b); "
                          "a transposed M moves positions backwards.")


@visible("sinusoidal.sinusoidal_offset_matrix", "offset 0 is the identity")
def _(ns):
    what = call_text("sinusoidal_offset_matrix", 0, 4)
    expect_close(ns.sinusoidal_offset_matrix(0, 4), torch.eye(4), what, atol=1e-6)


@visible("sinusoidal.sinusoidal_offset_matrix", "block-diagonal rotations: M_a @ M_b = M_(a+b), M M^T = I")
def _(ns):
    d = 8
    Ma, Mb, Mab = (ns.sinusoidal_offset_matrix(k, d).double() for k in (2, 5, 7))
    expect_close(Ma @ Mb, Mab, "sinusoidal_offset_matrix(2, 8) @ sinusoidal_offset_matrix(5, 8)", atol=1e-5,
                 hint="Shifting by 2 then by 5 is shifting by 7.")
    expect_close(Mab @ Mab.T, torch.eye(d, dtype=torch.float64), "M @ M.T for sinusoidal_offset_matrix(7, 8)",
                 atol=1e-5, hint="Each 2x2 block is a rotation, so M is orthogonal.")
    outside = torch.ones(d, d, dtype=torch.bool)
    for j in range(0, d, 2):
        outside[j:j + 2, j:j + 2] = False
    expect_close(Mab[outside], torch.zeros(int(outside.sum()), dtype=torch.float64),
                 "entries of sinusoidal_offset_matrix(7, 8) outside the 2x2 diagonal blocks", atol=1e-7,
                 hint="A shift never mixes different frequency pairs.")
