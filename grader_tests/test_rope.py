"""Hidden suite, section 6 (RoPE).

References are independent of solutions/: rotations are done as complex multiplication in
float64 NumPy, z = (a + ib) * exp(i * position * base^(-2k/r)).
"""
import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (Hint, Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_shape,
                             expect_value_error)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.decode_loop import (LENGTH, PADS, PROMPT, expect_cache_grows, expect_inputs_kept,
                                       expect_loop, expect_mask_length_checked, left_padded_batch, loop_text,
                                       masking_mistakes, run_loop)
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise
F32 = dict(atol=1e-4, rtol=1e-4)


def ref_inv_freq(d, base=10000.0):
    return float(base) ** (-np.arange(0, d, 2, dtype=np.float64) / d)


def ref_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None, freq_dim=None, swapped=False):
    """RoPE in float64; `freq_dim` (the wrong width for frequencies) and `swapped` (sine and cosine
    exchanged: x cos -> x sin, rotate(x) sin -> rotate(x) cos) let a diagnosis name a mistake."""
    x = x.double().numpy() if isinstance(x, torch.Tensor) else np.array(x, dtype=np.float64)
    r = rotary_dim or x.shape[-1]
    theta = np.asarray(positions, dtype=np.float64)[..., None] * ref_inv_freq(freq_dim or r, base)[: r // 2]
    first, second = (slice(0, r, 2), slice(1, r, 2)) if interleaved else (slice(0, r // 2), slice(r // 2, r))
    z = (x[..., first] + 1j * x[..., second]) * (1j * np.exp(-1j * theta) if swapped else np.exp(1j * theta))
    out = x.copy()
    out[..., first], out[..., second] = z.real, z.imag
    return torch.from_numpy(out)



def ref_rope_mixed(x, positions, base=10000.0, interleaved_table=True):
    """The two conventions mixed, for naming the mistake: cos/sin repeated per pair (2k, 2k+1)
    with the half-split rotate_half, or duplicated halves (k, k + d/2) with the interleaved rotation."""
    x = x.double().numpy()
    d = x.shape[-1]
    theta = np.asarray(positions, dtype=np.float64)[..., None] * ref_inv_freq(d, base)
    if interleaved_table:
        angles, turned = np.repeat(theta, 2, -1), np.concatenate((-x[..., d // 2:], x[..., : d // 2]), -1)
    else:
        angles, turned = np.concatenate((theta, theta), -1), np.stack((-x[..., 1::2], x[..., 0::2]), -1)
    return torch.from_numpy(x * np.cos(angles) + turned.reshape(x.shape) * np.sin(angles))


def rope_mistakes(x, positions, **kw):
    """Outputs of mistakes learners make, by name, for closest_mistake (rotary_dim not set)."""
    interleaved = kw.get("interleaved", False)
    other = dict(kw, interleaved=not interleaved)
    base = kw.get("base", 10000.0)
    return {
        mistake("pairing-convention", "the other pairing convention (interleaved=True pairs (2k, 2k+1); the default "
                "pairs (k, k + d/2))"): ref_rope(x, positions, **other),
        mistake("pairing-mixed", "the two pairing conventions mixed: cos/sin repeated per pair (2k, 2k+1) as the "
                "interleaved convention builds them, with the half-split rotate_half"):
            ref_rope_mixed(x, positions, base, interleaved_table=True),
        mistake("pairing-mixed", "the two pairing conventions mixed: cos/sin as two copies of the half (k, k + d/2) "
                "as the half-split convention builds them, with the interleaved rotation of pairs (2k, 2k+1)"):
            ref_rope_mixed(x, positions, base, interleaved_table=False),
        mistake("rotation-direction", "rotating the other way ((a, b) -> (a cos + b sin, -a sin + b cos))"):
            ref_rope(x, -np.asarray(positions), **kw),
        mistake("positions-ignored", "ignoring `positions` and using 0, 1, 2, ..."):
            ref_rope(x, np.arange(x.shape[-2]), **kw),
        mistake("count-from-one", "positions counted from 1: the first token is at position 0"):
            ref_rope(x, np.asarray(positions) + 1, **kw),
        mistake("sin-cos-swapped", "sine and cosine swapped: x * sin + rotate(x) * cos"):
            ref_rope(x, positions, swapped=True, **kw),
    }


# ---------------------------------------------------------------- rope_inv_freq
@exercise("rope.rope_inv_freq")
@pytest.mark.parametrize("d,base", [(8, 10000.0), (64, 500000.0)])
@pytest.mark.uses("rope_base", when={"base": 500000.0})
def test_inv_freq_values_for(submission, d, base):
    """gives base^(-2k/d) for each pair k"""
    what = call_text("rope_inv_freq", d, base)
    got = submission.rope_inv_freq(d, base)
    expected = torch.from_numpy(ref_inv_freq(d, base))
    hint = closest_mistake(got, {
        mistake("exponent-k-over-d", "base^(-k/d): the exponent must be 2k/d, k counting pairs"):
            torch.from_numpy(float(base) ** (-np.arange(d // 2) / d)),
        mistake("frequency-vs-wavelength", "base^(+2k/d): these are wavelengths/(2 pi), the frequencies are their "
                "inverses"): torch.from_numpy(float(base) ** (np.arange(0, d, 2) / d)),
    })
    expect_close(got, expected, what, atol=1e-7, rtol=1e-5, hint=hint)


@exercise("rope.rope_inv_freq")
@pytest.mark.robustness
def test_inv_freq_dtype(submission):
    """returns float32 of shape (d/2,)"""
    got = submission.rope_inv_freq(16)
    expect_shape(got, (8,), "rope_inv_freq(16)")
    expect_dtype(got, torch.float32, "rope_inv_freq(16)")


@exercise("rope.rope_inv_freq")
@pytest.mark.uses("argument_checks")
def test_inv_freq_odd_d(submission):
    """rejects an odd d with a ValueError naming d"""
    expect_value_error(submission.rope_inv_freq, 7, mentions="d", what="rope_inv_freq(7)")


# ---------------------------------------------------------------- rotate_complex
def ref_rotate_complex(x, angles, interleaved=False, sign=1):
    """Pairs as complex numbers in float64 NumPy, turned by e^(sign i angle); `interleaved` and
    `sign` let a diagnosis name a mistake."""
    x = x.double().numpy()
    h = x.shape[-1] // 2
    first, second = (slice(0, None, 2), slice(1, None, 2)) if interleaved else (slice(0, h), slice(h, None))
    z = (x[..., first] + 1j * x[..., second]) * np.exp(sign * 1j * angles.double().numpy())
    out = x.copy()
    out[..., first], out[..., second] = z.real, z.imag
    return torch.from_numpy(out)


def rotate_complex_mistakes(x, angles):
    return {
        mistake("pairing-convention", "pairs (2j, 2j+1), as view_as_complex reads them; this exercise pairs "
                "(j, j + d/2)"): ref_rotate_complex(x, angles, interleaved=True),
        mistake("rotation-direction", "multiplying by e^(-i angle), the conjugate"):
            ref_rotate_complex(x, angles, sign=-1),
        # sin t + i cos t = i e^(-it) = e^(-i(t - pi/2))
        mistake("sin-cos-swapped", "sine and cosine swapped: (a + ib)(sin t + i cos t)"):
            ref_rotate_complex(x, angles - np.pi / 2, sign=-1),
    }


@exercise("rope.rotate_complex", weight=2)
def test_rotate_complex_values(submission):
    """turns pair (x_j, x_(j+d/2)), read as x_j + i x_(j+d/2), by e^(i angles_j)"""
    x, angles = rand(3, 8, seed=20), rand(3, 4, seed=21) * 3
    got = submission.rotate_complex(x, angles)
    expect_close(got, ref_rotate_complex(x, angles), call_text("rotate_complex", x, angles), **F32,
                 hint=closest_mistake(got, rotate_complex_mistakes(x, angles)))


@exercise("rope.rotate_complex")
def test_rotate_complex_broadcasts(submission):
    """broadcasts angles against (..., d/2)"""
    x, angles = rand(2, 3, 6, seed=22), rand(3, 3, seed=23) * 3
    got = submission.rotate_complex(x, angles)
    expect_close(got, ref_rotate_complex(x, angles), call_text("rotate_complex", x, angles), **F32,
                 hint=closest_mistake(got, rotate_complex_mistakes(x, angles)))


@exercise("rope.rotate_complex")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 1e-2), (torch.bfloat16, 4e-2), (torch.float64, 1e-4)])
def test_rotate_complex_dtypes(submission, dtype, atol):
    """returns x's dtype, computed in float32 or wider"""
    x, angles = rand(4, 8, seed=24, dtype=dtype), torch.tensor([3.0, 700.0, 1500.0, 3000.0]) + rand(4, 4, seed=25)
    check_half_precision(submission.rotate_complex, "rotate_complex", x, angles, ref_rotate_complex, atol,
                         "the angles (or their cos and sin) are probably taken in half precision. Compute in "
                         "float32, then cast back.")


@exercise("rope.rotate_complex")
@pytest.mark.robustness
def test_rotate_complex_device(submission):
    """keeps the output on the input's device"""
    same_on_second_device(submission, submission.rotate_complex, rand(2, 8, seed=92), rand(2, 4, seed=93),
                          hint="Create every helper tensor on x.device.")


@exercise("rope.rotate_complex")
@pytest.mark.robustness
def test_rotate_complex_not_in_place(submission):
    """leaves x and angles unchanged"""
    submission.rotate_complex(rand(3, 8, seed=26), rand(3, 4, seed=27))
    if submission.mutated_inputs():
        raise Mismatch(f"rotate_complex changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("rope.rotate_complex")
@pytest.mark.parametrize("shape,angle_shape,blame", [((2, 7), (2, 3), ("x", "d")), ((2, 8), (2, 8), ("angles", "x")),
                                                     ((2, 8), (5, 4), ("angles", "x"))],
                         ids=["odd_d", "one_angle_per_feature", "rows_do_not_fit"])
@pytest.mark.uses("argument_checks")
def test_rotate_complex_bad_shapes(submission, shape, angle_shape, blame):
    """rejects an odd d, and angles that do not broadcast to one per pair, with a ValueError"""
    x, angles = rand(*shape), rand(*angle_shape, seed=1)
    expect_value_error(submission.rotate_complex, x, angles, mentions=blame,
                       what=call_text("rotate_complex", x, angles))


# ---------------------------------------------------------------- apply_rope
@exercise("rope.apply_rope", weight=2)
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.uses("interleaved", when={"interleaved": True})
@pytest.mark.uses("half_split", when={"interleaved": False})
def test_apply_rope_small(submission, interleaved):
    """rotates each pair by position times its frequency"""
    x, positions = rand(3, 4), torch.tensor([0, 1, 2])
    what = call_text("apply_rope", x, positions, interleaved=interleaved)
    got = submission.apply_rope(x, positions, interleaved=interleaved)
    hint = closest_mistake(got, rope_mistakes(x, positions, interleaved=interleaved))
    expect_close(got, ref_rope(x, positions, interleaved=interleaved), what, **F32, hint=hint)


@exercise("rope.apply_rope")
@pytest.mark.uses("rope_base")
def test_apply_rope_heads_and_base(submission):
    """works on (batch, heads, T, d) with another base"""
    x, positions = rand(2, 3, 5, 8, seed=1), torch.arange(5)
    got = submission.apply_rope(x, positions, base=500.0)
    expect_close(got, ref_rope(x, positions, base=500.0), call_text("apply_rope", x, positions, base=500.0), **F32,
                 hint=closest_mistake(got, rope_mistakes(x, positions, base=500.0)))


@exercise("rope.apply_rope")
def test_apply_rope_keeps_norm(submission):
    """keeps the length of every vector (a rotation)"""
    x, positions = rand(6, 16, seed=2), torch.tensor([0, 3, 10, 99, 500, 2047])
    got = submission.apply_rope(x, positions)
    expect_close(got.norm(dim=-1), x.norm(dim=-1), f"the norms of {call_text('apply_rope', x, positions)}", **F32)


@exercise("rope.apply_rope")
def test_apply_rope_relative(submission):
    """makes q.k depend only on the distance between positions"""
    q, k = rand(1, 8, seed=3), rand(1, 8, seed=4)
    scores = []
    for shift in (0, 17):
        rq = submission.apply_rope(q, torch.tensor([5 + shift]))
        rk = submission.apply_rope(k, torch.tensor([2 + shift]))
        scores.append((rq * rk).sum())
    expect_close(scores[1], scores[0], "q.k for positions (22, 19) compared with (5, 2)", **F32)


@exercise("rope.apply_rope")
@pytest.mark.uses("rotary_dim")
def test_apply_rope_partial(submission):
    """rotates only the first rotary_dim features, with frequencies over rotary_dim"""
    x, positions = rand(4, 8, seed=5), torch.tensor([0, 1, 2, 3])
    what = call_text("apply_rope", x, positions, rotary_dim=4)
    got = submission.apply_rope(x, positions, rotary_dim=4)
    angles = positions.double().numpy()[:, None] * ref_inv_freq(4)
    cos, sin = (torch.from_numpy(np.concatenate((f(angles), f(angles)), axis=-1)) for f in (np.cos, np.sin))
    hint = closest_mistake(got, {
        mistake("rotary-dim", "frequencies computed over the head dimension d instead of rotary_dim"):
            ref_rope(x, positions, rotary_dim=4, freq_dim=8),
        mistake("rotary-last-features", "the last 4 features rotated, the first 4 passed through"):
            torch.cat((x[..., :4].double(), ref_rope(x[..., 4:], positions)), dim=-1),
        mistake("rotary-pairs-whole-head", "feature k of the first 4 paired with feature k + 4 (half the head), "
                "not k + 2 (half of rotary_dim)"):
            torch.cat((x[..., :4].double() * cos - x[..., 4:].double() * sin, x[..., 4:].double()), dim=-1),
    })
    expect_close(got, ref_rope(x, positions, rotary_dim=4), what, **F32, hint=hint)


@exercise("rope.apply_rope")
@pytest.mark.uses("fractional_positions")
def test_apply_rope_fractional(submission):
    """accepts fractional positions"""
    x, positions = rand(3, 4, seed=6), torch.tensor([0.5, 1.25, 7.75])
    got = submission.apply_rope(x, positions)
    expect_close(got, ref_rope(x, positions), call_text("apply_rope", x, positions), **F32)


@exercise("rope.apply_rope")
def test_apply_rope_batched_positions(submission):
    """uses per-sequence positions that broadcast over heads"""
    x = rand(2, 2, 3, 4, seed=7)
    positions = torch.tensor([[[0, 1, 2]], [[5, 6, 7]]])  # (B, 1, T)
    got = submission.apply_rope(x, positions)
    expect_close(got, ref_rope(x, positions), call_text("apply_rope", x, positions), **F32,
                 hint=closest_mistake(got, rope_mistakes(x, positions)))


@exercise("rope.apply_rope")
def test_apply_rope_decoding(submission):
    """rotates a decoded token by its true position, not by 0"""
    x = rand(6, 8, seed=8)
    full = ref_rope(x, torch.arange(6))
    got = submission.apply_rope(x[5:], torch.tensor([5]))
    what = call_text("apply_rope", x[5:], torch.tensor([5])) + " (one new token after 5 cached ones)"
    hint = closest_mistake(got, {mistake("positions-restart", "positions restarting at 0 for the new token"):
                                     ref_rope(x[5:], [0])})
    expect_close(got, full[5:], what, **F32, hint=hint)


@exercise("rope.apply_rope")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 1e-2), (torch.bfloat16, 4e-2), (torch.float64, 1e-4)])
def test_apply_rope_dtypes(submission, dtype, atol):
    """returns the input's dtype, with angles computed in float32 or wider"""
    x, positions = rand(4, 8, seed=9, dtype=dtype), torch.tensor([3, 700, 1500, 3000])
    check_half_precision(submission.apply_rope, "apply_rope", x, positions, ref_rope, atol,
                         "the angles (position x frequency) are probably computed in half precision. Compute "
                         "angles, cos and sin in float32, then cast back.")


def check_half_precision(fn, name: str, x, second, reference, atol: float, why: str) -> None:
    """`fn(x, second)` returns x's dtype and the float64 `reference`'s values within `atol`; in half
    precision, a result right in float32 names the half-precision mistake."""
    what = call_text(name, x, second)
    got = fn(x, second)
    expect_dtype(got, x.dtype, what)
    hint = ""
    if x.dtype in (torch.float16, torch.bfloat16):
        as32 = fn(x.float(), second)
        if torch.allclose(as32.double(), reference(x, second), **F32):
            hint = Hint(f"In float32 your result is right, in {str(x.dtype)[6:]} it is not: {why}", "half-precision")
    expect_close(got, reference(x, second), what, atol=atol, rtol=atol, hint=hint)


ON_DEVICE = "Create every helper tensor (frequencies, angles) on x.device."


@exercise("rope.apply_rope")
@pytest.mark.robustness
def test_apply_rope_device(submission):
    """keeps the output on the input's device"""
    same_on_second_device(submission, submission.apply_rope, rand(2, 3, 8, seed=90), torch.arange(3), hint=ON_DEVICE)


@exercise("rope.apply_rope")
@pytest.mark.robustness
@pytest.mark.uses("interleaved", "rotary_dim", "fractional_positions")
def test_apply_rope_device_partial(submission):
    """keeps the output on the input's device with fractional positions, interleaved pairs and a rotary_dim"""
    same_on_second_device(submission, submission.apply_rope, rand(2, 3, 8, seed=91), torch.tensor([4.5, 0.0, 9.0]),
                          interleaved=True, rotary_dim=4, hint=ON_DEVICE)


@exercise("rope.apply_rope")
@pytest.mark.robustness
def test_apply_rope_not_in_place(submission):
    """leaves its input unchanged"""
    submission.apply_rope(rand(3, 8, seed=10), torch.arange(3))
    if submission.mutated_inputs():
        raise Mismatch(f"apply_rope changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("rope.apply_rope")
@pytest.mark.parametrize("rotary_dim", [3, 10, 0])
@pytest.mark.uses("rotary_dim", "argument_checks")
def test_apply_rope_bad_rotary_dim(submission, rotary_dim):
    """rejects a rotary_dim that is odd or outside 2..d"""
    x = rand(2, 8)
    expect_value_error(submission.apply_rope, x, torch.arange(2), rotary_dim=rotary_dim, mentions="rotary_dim",
                       what=call_text("apply_rope", x, torch.arange(2), rotary_dim=rotary_dim))


# ---------------------------------------------------------------- rope_matrix
def ref_matrix(position, d, interleaved=False):
    return ref_rope(np.eye(d), np.full(d, float(position)), interleaved=interleaved).T


@exercise("rope.rope_matrix", weight=2)
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.uses("interleaved", when={"interleaved": True})
@pytest.mark.uses("half_split", when={"interleaved": False})
def test_rope_matrix_values(submission, interleaved):
    """is the matrix R with apply_rope(x, p) == x @ R.T"""
    what = call_text("rope_matrix", 1, 4, interleaved=interleaved)
    got = submission.rope_matrix(1, 4, interleaved=interleaved)
    hint = closest_mistake(got, {
        mistake("matrix-transposed", "R.T instead of R (x @ R.T must equal the rotated x)"):
            ref_matrix(1, 4, interleaved).T,
        mistake("pairing-convention", "the other pairing convention"): ref_matrix(1, 4, not interleaved),
    })
    expect_close(got, ref_matrix(1, 4, interleaved), what, **F32, hint=hint)


@exercise("rope.rope_matrix")
def test_rope_matrix_orthogonal_and_relative(submission):
    """is orthogonal, and R_m^T R_n = R_(n-m)"""
    r3, r10, r7 = (submission.rope_matrix(p, 8) for p in (3, 10, 7))
    expect_close(r3 @ r3.T, torch.eye(8), "rope_matrix(3, 8) @ rope_matrix(3, 8).T", **F32)
    expect_close(r3.T @ r10, r7, "rope_matrix(3, 8).T @ rope_matrix(10, 8) compared with rope_matrix(7, 8)", **F32)


@exercise("rope.rope_matrix")
@pytest.mark.robustness
def test_rope_matrix_dtype(submission):
    """returns a float32 (d, d) matrix"""
    got = submission.rope_matrix(2, 6)
    expect_shape(got, (6, 6), "rope_matrix(2, 6)")
    expect_dtype(got, torch.float32, "rope_matrix(2, 6)")


# ---------------------------------------------------------------- interleaved_to_half_split
@exercise("rope.interleaved_to_half_split", weight=2)
@pytest.mark.parametrize("d", [4, 8, 16])
def test_permutation_links_conventions(submission, d):
    """maps the interleaved convention onto the half-split one"""
    what = call_text("interleaved_to_half_split", d)
    perm = submission.interleaved_to_half_split(d)
    expect_dtype(perm, torch.int64, what)
    expect_shape(perm, (d,), what)
    if sorted(perm.tolist()) != list(range(d)):
        raise AssertionError(f"{what} returned {perm.tolist()}, which is not a permutation of 0..{d - 1}")
    x, positions = rand(3, d, seed=11), torch.tensor([1, 4, 9])
    lhs, rhs = ref_rope(x, positions, interleaved=True)[..., perm], ref_rope(x[..., perm], positions)
    inverse = torch.argsort(perm)
    if not torch.allclose(lhs, rhs, atol=1e-9):
        hint = ""
        if torch.allclose(ref_rope(x, positions, interleaved=True)[..., inverse], ref_rope(x[..., inverse], positions)):
            hint = " It is the inverse permutation: you mapped half-split positions to interleaved ones."
        raise Mismatch(f"with perm = {what} = {perm.tolist()}, rotating interleaved then permuting differs from "
                       f"permuting then rotating half-split.{hint}", "inverse-permutation" if hint else None)


@exercise("rope.interleaved_to_half_split")
@pytest.mark.uses("argument_checks")
def test_permutation_odd_d(submission):
    """rejects an odd d with a ValueError naming d"""
    expect_value_error(submission.interleaved_to_half_split, 5, mentions="d", what="interleaved_to_half_split(5)")


# ---------------------------------------------------------------- RotaryEmbedding
@exercise("rope.RotaryEmbedding", weight=2)
@pytest.mark.parametrize("interleaved,base", [(False, 10000.0), (True, 500.0)])
@pytest.mark.uses("interleaved", when={"interleaved": True})
@pytest.mark.uses("half_split", when={"interleaved": False})
@pytest.mark.uses("rope_base", when={"base": 500.0})
def test_rotary_module_matches(submission, interleaved, base):
    """rotates q and k like apply_rope with the module's settings"""
    module = submission.RotaryEmbedding(8, base=base, interleaved=interleaved)
    q, k, positions = rand(2, 3, 5, 8, seed=12), rand(2, 3, 5, 8, seed=13), torch.arange(5)
    what = call_text(f"RotaryEmbedding(8, base={base}, interleaved={interleaved})", q, k, positions)
    got_q, got_k = module(q, k, positions)
    kw = dict(base=base, interleaved=interleaved)
    for name, x, got in (("q", q, got_q), ("k", k, got_k)):
        ignored = {mistake("default-argument", "interleaved=True not passed on: the default half-split pairs used"):
                   ref_rope(x, positions, base=base)} if interleaved else {}
        hint = closest_mistake(got, {**ignored, **rope_mistakes(x, positions, **kw)})
        expect_close(got, ref_rope(x, positions, **kw), f"{what} (the rotated {name})", **F32, hint=hint)


@exercise("rope.RotaryEmbedding")
@pytest.mark.uses("cache_growth")
def test_rotary_module_grows(submission):
    """handles positions beyond max_len"""
    module = submission.RotaryEmbedding(4, max_len=4)
    x, positions = rand(10, 4, seed=14), torch.arange(10)
    got_q, _ = module(x, x, positions)
    expect_close(got_q, ref_rope(x, positions), "RotaryEmbedding(4, max_len=4) at positions 0..9", **F32)


@exercise("rope.RotaryEmbedding")
@pytest.mark.robustness
def test_rotary_module_device(submission):
    """moved to another device, returns q_rot and k_rot there"""
    q, k = rand(2, 3, 8, seed=94), rand(2, 3, 8, seed=95)
    same_on_second_device(submission, submission.RotaryEmbedding(8), q, k, torch.tensor([0, 2, 5]),
                          hint="Keep the cos/sin cache in buffers (register_buffer) or move it to q.device.")


@exercise("rope.RotaryEmbedding")
@pytest.mark.robustness
@pytest.mark.uses("cache_growth")
def test_rotary_module_device_grows(submission):
    """moved to another device, grows its cache there for positions beyond max_len"""
    q, k = rand(3, 4, seed=96), rand(3, 4, seed=97)
    same_on_second_device(submission, submission.RotaryEmbedding(4, max_len=4), q, k, torch.tensor([1, 6, 9]),
                          hint="Build the grown cache on the device of q (or of the old cache).")


@exercise("rope.RotaryEmbedding")
def test_rotary_module_decoding(submission):
    """rotates a single decoded token at its true position"""
    module = submission.RotaryEmbedding(8)
    q, k = rand(1, 1, 8, seed=15), rand(1, 1, 8, seed=16)
    got_q, got_k = module(q, k, torch.tensor([6]))
    hint = closest_mistake(got_q, {mistake("queries-at-start", "the query rotated at position 0, as the first token: "
                                           "decoded after 6 others, it is at position 6"): ref_rope(q, [0])})
    expect_close(got_q, ref_rope(q, [6]), "RotaryEmbedding(8) with q at position 6", **F32, hint=hint)
    expect_close(got_k, ref_rope(k, [6]), "RotaryEmbedding(8) with k at position 6", **F32)


@exercise("rope.RotaryEmbedding")
@pytest.mark.robustness
@pytest.mark.uses("cache_growth")  # positions up to 2500, past the default max_len
def test_rotary_module_half(submission):
    """keeps float16 inputs in float16 and accurate"""
    module = submission.RotaryEmbedding(8)
    q = rand(4, 8, seed=17, dtype=torch.float16)
    positions = torch.tensor([1, 900, 1800, 2500])
    got_q, _ = module(q, q, positions)
    expect_dtype(got_q, torch.float16, "RotaryEmbedding(8) on float16 q")
    expect_close(got_q, ref_rope(q, positions), "RotaryEmbedding(8) on float16 q", atol=1e-2, rtol=1e-2)


@exercise("rope.RotaryEmbedding")
def test_rotary_module_is_module(submission):
    """is a torch.nn.Module"""
    names = submission.type_names(submission.RotaryEmbedding(4))
    if "torch.nn.modules.module.Module" not in names:
        raise AssertionError("RotaryEmbedding(4) is not a torch.nn.Module: subclass nn.Module")


@exercise("rope.RotaryEmbedding")
@pytest.mark.uses("argument_checks")
def test_rotary_module_wrong_width(submission):
    """rejects q or k whose last dimension is not d"""
    module = submission.RotaryEmbedding(8)
    q, k = rand(3, 6), rand(3, 8)
    expect_value_error(module, q, k, torch.arange(3), mentions=("q", "d"), what=call_text("RotaryEmbedding(8)", q, k, torch.arange(3)))


# ---------------------------------------------------------------- cached_rope_attention
# The decode loop of course.grading.decode_loop: a left-padded batch, each real token's output
# against its row computed alone at positions 0, 1, 2, ... (ref_causal_rope).
NAME = "cached_rope_attention"
HINTS = ("Are positions counted from the real tokens and padding keys masked?",
         "Are the new tokens' positions counted from the real tokens, and their keys added after the cached ones?")


def ref_causal_rope(q, k, v):
    """One sequence without padding (H, T, d), positions 0..T-1: causal softmax attention in float64."""
    positions = np.arange(q.shape[-2])
    qr, kr = ref_rope(q, positions).numpy(), ref_rope(k, positions).numpy()
    scores = qr @ np.swapaxes(kr, -1, -2) / np.sqrt(q.shape[-1])
    scores = np.where(np.tril(np.ones(scores.shape[-2:], dtype=bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return torch.from_numpy(weights / weights.sum(-1, keepdims=True) @ v.double().numpy())


def simulate_rope_loop(q, k, v, mask, chunks, numbering="real", mask_padding=True, causal_from_end=True,
                       interleaved=False, scale=True, rotate_cache=False, new_first=False, strict=False):
    """The decode loop in float64 NumPy with the knobs of known mistakes, for naming them only
    (expected values come from ref_causal_rope). Returns the output of every call."""
    real = mask.bool().numpy()
    before = np.where(real, np.cumsum(real, -1) - 1, 0)  # real tokens before each one; 0 on padding
    q, k, v = (t.double().numpy() for t in (q, k, v))
    outs, start, d = [], 0, q.shape[-1]
    keys, values = np.zeros(k.shape[:-2] + (0, k.shape[-1])), v[..., :0, :]
    for n in chunks:
        cols = np.arange(start, start + n)
        if numbering == "restart":
            pos = np.broadcast_to(np.arange(n), (len(real), n))
        elif numbering == "columns_in_decode" and start > 0:
            pos = np.broadcast_to(cols, (len(real), n))
        else:
            pos = before[:, cols]
        rot = lambda x, p: ref_rope(x, p[:, None, :], interleaved=interleaved).numpy()  # noqa: E731
        if rotate_cache:  # the cached keys, already rotated, rotated again at their positions
            keys = rot(keys, before[:, :start])
        # new_first: the new keys and values put before the cached ones, the mask left in column order
        join = lambda past, new: np.concatenate((new, past) if new_first else (past, new), axis=-2)  # noqa: E731
        keys, values = join(keys, rot(k[..., cols, :], pos)), join(values, v[..., cols, :])
        scores = rot(q[..., cols, :], pos) @ np.swapaxes(keys, -1, -2) / (np.sqrt(d) if scale else 1.0)
        last = (start if causal_from_end else 0) + np.arange(n)[:, None] - strict  # the last key each query sees
        allowed = np.arange(start + n)[None, :] <= last
        if mask_padding:
            allowed = allowed & real[:, None, None, : start + n]
        scores = np.where(allowed, scores, -np.inf)
        with np.errstate(invalid="ignore"):
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            outs.append(torch.from_numpy(weights / weights.sum(-1, keepdims=True) @ values))
        start += n
    return outs


def rope_loop_mistakes(q, k, v, mask, chunks):
    """Known mistakes, name -> their output of every call."""
    run = lambda **knobs: simulate_rope_loop(q, k, v, mask, chunks, **knobs)  # noqa: E731
    return {
        mistake("positions-restart", "new tokens numbered from 0 in every call: a generated token's position "
                "continues from the real tokens before it"): run(numbering="restart"),
        mistake("positions-inconsistent", "decode positions counting the padding (T_past + i) while the prefill "
                "counted only real tokens; either count the padding everywhere or nowhere"):
            run(numbering="columns_in_decode"),
        **masking_mistakes(run),
        mistake("pairing-convention", "the other pairing convention (the half-split pairs (k, k + d/2) are required "
                "here)"): run(interleaved=True),
        mistake("not-scaled", "scores not divided by sqrt(d)"): run(scale=False),
        mistake("cache-rerotated", "cached keys rotated a second time (the cache holds them already rotated)"):
            run(rotate_cache=True),
        mistake("cache-order", "the new keys and values put before the cached ones; the attention_mask's columns "
                "are the cached tokens first, then the new ones"): run(new_first=True),
    }


def expect_rope_loop(outs, q, k, v, mask, chunks, what, **tolerance):
    expect_loop(outs, q, k, v, mask, chunks, what, lambda *row: [ref_causal_rope(*row)],
                lambda: rope_loop_mistakes(q, k, v, mask, chunks), HINTS, tolerance)


@exercise("rope.cached_rope_attention", weight=2)
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool], ids=["0/1 mask", "bool mask"])
def test_cached_rope_full_pass(submission, mask_dtype):
    """one call over a left-padded batch equals each row computed alone without padding"""
    q, k, v, mask = left_padded_batch(heads=3)
    chunks = (LENGTH,)
    outs, _ = run_loop(submission.cached_rope_attention, q, k, v, mask, chunks, mask_dtype)
    expect_rope_loop(outs, q, k, v, mask, chunks, f"{loop_text(chunks)}, pads per row {PADS}, {str(mask_dtype)[6:]} mask")


@exercise("rope.cached_rope_attention", weight=3)
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool], ids=["0/1 mask", "bool mask"])
def test_cached_rope_one_token_at_a_time(submission, mask_dtype):
    """prefill then one token per call equals the full pass, row by row"""
    q, k, v, mask = left_padded_batch(heads=3, seed=50)
    chunks = (PROMPT,) + (1,) * (LENGTH - PROMPT)
    outs, _ = run_loop(submission.cached_rope_attention, q, k, v, mask, chunks, mask_dtype)
    expect_rope_loop(outs, q, k, v, mask, chunks, f"{loop_text(chunks)}, pads per row {PADS}")


@exercise("rope.cached_rope_attention", weight=2)
def test_cached_rope_chunks(submission):
    """prefill then chunks of several tokens (causal mask aligned to the end) equals the full pass"""
    q, k, v, mask = left_padded_batch(heads=3, seed=60)
    chunks = (PROMPT - 1, 2, 3, 1)
    outs, _ = run_loop(submission.cached_rope_attention, q, k, v, mask, chunks)
    expect_rope_loop(outs, q, k, v, mask, chunks, f"{loop_text(chunks)}, pads per row {PADS}")


@exercise("rope.cached_rope_attention")
def test_cached_rope_cache_grows(submission):
    """returns a (keys, values) cache that grows by T_new along dim -2"""
    expect_cache_grows(submission.cached_rope_attention, *left_padded_batch(heads=3, seed=70), (PROMPT, 2, 1))


@exercise("rope.cached_rope_attention")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 1e-2), (torch.bfloat16, 5e-2)])
def test_cached_rope_half(submission, dtype, tol):
    """keeps float16/bfloat16 inputs in their dtype through prefill and decode, computing in float32"""
    q, k, v, mask = left_padded_batch(heads=3, seed=80, dtype=dtype)
    chunks = (PROMPT, 1, 1, 3)
    outs, _ = run_loop(submission.cached_rope_attention, q, k, v, mask, chunks)
    for step, out in enumerate(outs):
        expect_dtype(out, dtype, f"call {step + 1} of {loop_text(chunks)} on {str(dtype)[6:]} inputs")
    # Half precision rounds q, k, v and the output; the reference sees the same rounded inputs. Outputs are
    # of order 1: float16 keeps about 3 decimal digits, bfloat16 about 2 (and cached keys are stored rounded).
    expect_rope_loop(outs, q, k, v, mask, chunks, f"{loop_text(chunks)} on {str(dtype)[6:]} inputs", atol=tol, rtol=tol)


@exercise("rope.cached_rope_attention")
@pytest.mark.robustness
def test_cached_rope_not_in_place(submission):
    """leaves q, k, v and the mask unchanged"""
    expect_inputs_kept(submission, NAME, *left_padded_batch(heads=3, seed=90))


@exercise("rope.cached_rope_attention")
@pytest.mark.uses("argument_checks")
def test_cached_rope_mask_length(submission):
    """rejects an attention_mask that does not cover T_past + T_new tokens with a ValueError naming it"""
    expect_mask_length_checked(submission.cached_rope_attention, NAME, *left_padded_batch(heads=3, seed=100))


@exercise("rope.cached_rope_attention")
@pytest.mark.uses("argument_checks")
def test_cached_rope_odd_d(submission):
    """rejects an odd head dimension with a ValueError naming d"""
    q, k, v, mask = left_padded_batch(heads=3, d=7, seed=110)
    expect_value_error(submission.cached_rope_attention, q, k, v, mask, mentions="d",
                       what=call_text("cached_rope_attention", q, k, v, mask))
