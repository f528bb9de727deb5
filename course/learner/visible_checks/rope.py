"""Visible checks for section 6, RoPE.

Every expected value below is derived in the check from a property of rotations or from
the formula for one pair written out by hand (cos/sin of a single angle), never copied
from a reference implementation.
"""
from __future__ import annotations

import math

import torch

from course.checking import (
    call_text,
    expect_close,
    expect_dtype,
    expect_equal,
    expect_shape,
    expect_tensor,
    expect_value_error,
    left_padded_batch,
)
from course.learner.visible_checks import visible
from course.learner.visible_checks.decoding import (call_pair, expect_cache_and_mask_length,
                                                    expect_decoding_matches_full_pass)


def _quarter_turn_check(x_rot, x, pair, what):
    """A quarter turn maps the pair (a, b) to (-b, a) and leaves other features alone."""
    i, j = pair
    expected = x.clone()
    expected[..., i], expected[..., j] = -x[..., j], x[..., i]
    expect_close(x_rot, expected, what, atol=1e-5,
                 hint=f"A quarter turn sends the pair (a, b) at features ({i}, {j}) to (-b, a).")


# ---------------------------------------------------------------- rope_inv_freq

@visible("rope.rope_inv_freq", "shape (d/2,), float32, starts at 1")
def _(ns):
    d = 8
    what = call_text("rope_inv_freq", d)
    got = expect_tensor(ns.rope_inv_freq(d), what)
    expect_shape(got, (d // 2,), what)
    expect_dtype(got, torch.float32, what)
    # k = 0 gives base^0 = 1 whatever the base.
    expect_close(got[:1], torch.ones(1), what + "[0]", hint="Pair 0 has exponent 0, so base^0 = 1.")


@visible("rope.rope_inv_freq", "a geometric ladder from 1 down towards 1/base")
def _(ns):
    d, base = 6, 64.0
    what = call_text("rope_inv_freq", d, base=base)
    got = expect_tensor(ns.rope_inv_freq(d, base=base), what)
    # base^(-2k/d) with d = 6, base = 64 = 4^3: exponents 0, 1/3, 2/3 give 1, 1/4, 1/16.
    expect_close(got, torch.tensor([1.0, 0.25, 1.0 / 16]), what,
                 hint="Entry k is base ** (-2k/d): 64 ** (-1/3) = 1/4, 64 ** (-2/3) = 1/16.")


@visible("rope.rope_inv_freq", "odd d is a ValueError naming d")
def _(ns):
    expect_value_error(ns.rope_inv_freq, 7, mentions="d", what=call_text("rope_inv_freq", 7))


# ---------------------------------------------------------------- rotate_complex

@visible("rope.rotate_complex", "turns z_j = x_j + i x_(j+d/2) by its angle: a quarter turn gives i z_j")
def _(ns):
    # d = 6: pairs (0, 3), (1, 4), (2, 5). Multiplying by e^(i pi/2) = i sends a + ib to -b + ia,
    # by e^0 = 1 leaves it, by e^(i pi) = -1 negates it.
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    angles = torch.tensor([math.pi / 2, 0.0, math.pi])
    what = call_text("rotate_complex", x, angles)
    got = expect_tensor(ns.rotate_complex(x, angles), what)
    expect_shape(got, x.shape, what)
    expect_dtype(got, torch.float32, what)
    expect_close(got, torch.tensor([[-4.0, 2.0, -3.0, 1.0, 5.0, -6.0]]), what, atol=1e-5,
                 hint="Pair j is (x[j], x[j + d/2]), the real and imaginary parts of one complex number; "
                      "(a + ib)(cos t + i sin t) = (a cos t - b sin t) + i (a sin t + b cos t).")
    half = x.half()
    expect_dtype(ns.rotate_complex(half, angles), torch.float16, call_text("rotate_complex", half, angles))


@visible("rope.rotate_complex", "angles add, and scores see only the offset m - n")
def _(ns):
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    a, b = torch.rand(3, 4, generator=g) * 6, torch.rand(4, generator=g) * 6
    what = ("rotate_complex(rotate_complex(q, a), b) against rotate_complex(q, a + b), q of shape (3, 8), "
            "a of shape (3, 4), b of shape (4,)")
    expect_close(ns.rotate_complex(ns.rotate_complex(q, a), b), ns.rotate_complex(q, a + b), what, atol=1e-4,
                 hint="e^(ia) e^(ib) = e^(i(a+b)): turning twice is turning by the sum.")
    theta = torch.tensor([1.0, 0.3, 0.1, 0.01])

    def score(m, n):
        return (ns.rotate_complex(q, m * theta) * ns.rotate_complex(k, n * theta)).sum(-1)

    expect_close(score(12, 15), score(2, 5), "scores with angles m theta_j, n theta_j at (m, n) = (12, 15) "
                 "against (2, 5)", atol=1e-4, hint="Turn q and k the same way; only the angle difference may survive.")


@visible("rope.rotate_complex", "odd d and angles that do not fit x are ValueErrors")
def _(ns):
    x = torch.zeros(2, 5)
    expect_value_error(ns.rotate_complex, x, torch.zeros(2), mentions=("x", "d"),
                       what=call_text("rotate_complex", x, torch.zeros(2)))
    x = torch.zeros(2, 8)
    expect_value_error(ns.rotate_complex, x, torch.zeros(2, 8), mentions=("angles", "x"),
                       what=call_text("rotate_complex", x, torch.zeros(2, 8)) + " (one angle per pair: 4, not 8)")


# ---------------------------------------------------------------- apply_rope

@visible("rope.apply_rope", "a quarter turn sends (a, b) to (-b, a), in both pairings")
def _(ns):
    # d = 2: the only pair has inverse frequency 1, so position pi/2 is a quarter turn.
    x = torch.tensor([[3.0, 4.0]])
    pos = torch.tensor([math.pi / 2])
    _quarter_turn_check(ns.apply_rope(x, pos), x, (0, 1), call_text("apply_rope", x, pos))
    # d = 4: pair 0 (inverse frequency 1) is (0, 2) half-split and (0, 1) interleaved.
    # Put all the weight on feature 0 and feature 0 goes to (cos p, sin p) on its partner.
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    for interleaved, partner in ((False, 2), (True, 1)):
        what = call_text("apply_rope", x, pos, interleaved=interleaved)
        got = ns.apply_rope(x, pos, interleaved=interleaved)
        expect_shape(got, x.shape, what)
        hint = f"With interleaved={interleaved}, feature 0 pairs with feature {partner}."
        expect_close(got[0, partner], torch.tensor(1.0), f"{what}[0, {partner}]", atol=1e-5, hint=hint)
        expect_close(got[0, 0], torch.tensor(0.0), f"{what}[0, 0]", atol=1e-5, hint=hint)


@visible("rope.apply_rope", "keeps the length of every vector and the input's dtype")
def _(ns):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 8, generator=g)
    pos = torch.arange(5) * 7
    what = call_text("apply_rope", x, pos)
    got = ns.apply_rope(x, pos)
    expect_shape(got, x.shape, what)
    expect_dtype(got, torch.float32, what)
    expect_close(got.norm(dim=-1), x.norm(dim=-1), what + " vector norms", atol=1e-4,
                 hint="A rotation never changes a vector's length.")
    half = x.half()
    expect_dtype(ns.apply_rope(half, pos), torch.float16, call_text("apply_rope", half, pos))


@visible("rope.apply_rope", "scores q_m . k_n depend only on m - n")
def _(ns):
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    pos = torch.arange(6)
    scores = ns.apply_rope(q, pos) @ ns.apply_rope(k, pos).T
    shift = 11
    shifted = ns.apply_rope(q, pos + shift) @ ns.apply_rope(k, pos + shift).T
    expect_close(shifted, scores, f"scores after shifting every position by {shift}", atol=1e-4,
                 hint="Rotate q and k by the same rule; only the angle difference may survive.")


@visible("rope.apply_rope", "rotary_dim rotates the first features and passes the rest")
def _(ns):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 8, generator=g)
    pos = torch.arange(4) * 3
    what = call_text("apply_rope", x, pos, rotary_dim=4)
    got = ns.apply_rope(x, pos, rotary_dim=4)
    expect_shape(got, x.shape, what)
    expect_close(got[:, 4:], x[:, 4:], what + "[:, 4:]", hint="Features past rotary_dim are not rotated.")
    # The rotated part is RoPE on a 4-wide vector: same frequencies, same pairs.
    expect_close(got[:, :4], ns.apply_rope(x[:, :4], pos), what + "[:, :4]", atol=1e-5,
                 hint="Frequencies and pairs come from rotary_dim, not from d.")
    expect_value_error(ns.apply_rope, x, pos, rotary_dim=3, mentions="rotary_dim",
                       what=call_text("apply_rope", x, pos, rotary_dim=3))


# ---------------------------------------------------------------- rope_matrix

@visible("rope.rope_matrix", "for d = 2 it is the plain 2-D rotation by the position")
def _(ns):
    p = 0.7  # d = 2: inverse frequency 1, so the angle is the position itself
    what = call_text("rope_matrix", p, 2)
    got = expect_tensor(ns.rope_matrix(p, 2), what)
    c, s = math.cos(p), math.sin(p)
    expect_close(got, torch.tensor([[c, -s], [s, c]]), what)


@visible("rope.rope_matrix", "pairs features (k, k + d/2), or (2k, 2k+1) when interleaved")
def _(ns):
    p, base = 0.9, 100.0  # d = 4: pair 0 turns by p, pair 1 by p / sqrt(base) = p / 10
    c0, s0, c1, s1 = math.cos(p), math.sin(p), math.cos(p / 10), math.sin(p / 10)
    for interleaved, pairs in ((False, ((0, 2), (1, 3))), (True, ((0, 1), (2, 3)))):
        expected = torch.zeros(4, 4)
        for (i, j), (c, s) in zip(pairs, ((c0, s0), (c1, s1))):
            expected[i, i], expected[i, j], expected[j, i], expected[j, j] = c, -s, s, c
        what = call_text("rope_matrix", p, 4, base=base, interleaved=interleaved)
        expect_close(ns.rope_matrix(p, 4, base=base, interleaved=interleaved), expected, what,
                     hint=f"Pairs are {pairs}; pair k turns by position * base^(-2k/d).")


@visible("rope.rope_matrix", "orthogonal, and R_m^T R_n = R_(n-m)")
def _(ns):
    d, m, n = 8, 5, 12
    R_m, R_n, R_diff = ns.rope_matrix(m, d), ns.rope_matrix(n, d), ns.rope_matrix(n - m, d)
    expect_shape(R_m, (d, d), call_text("rope_matrix", m, d))
    expect_close(R_m.T @ R_m, torch.eye(d), f"rope_matrix({m}, {d}).T @ rope_matrix({m}, {d})", atol=1e-5)
    expect_close(R_m.T @ R_n, R_diff, f"rope_matrix({m}, {d}).T @ rope_matrix({n}, {d})", atol=1e-5,
                 hint=f"Undoing a turn by {m} then turning by {n} is a turn by {n - m}.")


# ---------------------------------------------------------------- interleaved_to_half_split

@visible("rope.interleaved_to_half_split", "a LongTensor permutation of 0 .. d-1")
def _(ns):
    d = 8
    what = call_text("interleaved_to_half_split", d)
    perm = expect_tensor(ns.interleaved_to_half_split(d), what)
    expect_shape(perm, (d,), what)
    expect_equal(perm.sort().values, torch.arange(d), what + " sorted",
                 hint="Every feature index must appear exactly once (as int64).")


@visible("rope.interleaved_to_half_split", "pair (2k, 2k+1) lands on half-split pair (k, k + d/2)")
def _(ns):
    d = 8
    perm = ns.interleaved_to_half_split(d)
    # y = x[..., perm] puts x[perm[j]] at slot j; slots (k, k + d/2) form half-split pair k,
    # which turns at frequency k, so they must hold interleaved pair k: features (2k, 2k+1).
    for k in range(d // 2):
        got = torch.stack((perm[k], perm[k + d // 2]))
        expect_equal(got, torch.tensor([2 * k, 2 * k + 1]),
                     f"interleaved_to_half_split({d})[[{k}, {k + d // 2}]]",
                     hint=f"Half-split slots ({k}, {k + d // 2}) turn at frequency {k}, like interleaved "
                          f"features ({2 * k}, {2 * k + 1}).")


@visible("rope.interleaved_to_half_split", "odd d is a ValueError naming d")
def _(ns):
    expect_value_error(ns.interleaved_to_half_split, 5, mentions="d", what=call_text("interleaved_to_half_split", 5))


# ---------------------------------------------------------------- RotaryEmbedding

def _pair_rotation(x, positions, pairs, inv_freq):
    """Rotate each listed pair of x (T, d) by position * inv_freq[k] (written out per pair)."""
    out = x.clone()
    for (i, j), f in zip(pairs, inv_freq):
        angle = positions.double() * f
        c, s = angle.cos().float(), angle.sin().float()
        out[:, i], out[:, j] = x[:, i] * c - x[:, j] * s, x[:, i] * s + x[:, j] * c
    return out


@visible("rope.RotaryEmbedding", "rotates q and k like apply_rope, in both pairings")
def _(ns):
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    pos = torch.arange(5) * 2
    for interleaved, pairs in ((False, ((0, 2), (1, 3))), (True, ((0, 1), (2, 3)))):
        what = f"RotaryEmbedding(4, base=100.0, interleaved={interleaved})(q, k, positions)"
        module = ns.RotaryEmbedding(4, base=100.0, interleaved=interleaved)
        out = module(q, k, pos)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError(f"{what} returned {type(out).__name__}, expected a tuple (q_rot, k_rot)")
        for name, x, got in (("q_rot", q, out[0]), ("k_rot", k, out[1])):
            expected = _pair_rotation(x, pos, pairs, (1.0, 0.1))  # base^(-2k/d) = 100^0, 100^-0.5
            expect_close(got, expected, f"{what}: {name}", atol=1e-5,
                         hint=f"Pairs are {pairs}, turning by position * (1, 1/10).")


@visible("rope.RotaryEmbedding", "positions beyond max_len work (the cache grows)")
def _(ns):
    g = torch.Generator().manual_seed(5)
    q = torch.randn(1, 2, 6, 8, generator=g)
    pos = torch.tensor([0, 3, 9, 17, 40, 41])
    module = ns.RotaryEmbedding(8, max_len=4)
    what = "RotaryEmbedding(8, max_len=4)(q, q, positions up to 41)"
    q_rot, _ = module(q, q, pos)
    roomy = ns.RotaryEmbedding(8, max_len=64)
    expect_close(q_rot, roomy(q, q, pos)[0], what + " vs the same module with max_len=64", atol=1e-5,
                 hint="Rebuild (extend) the cos/sin cache when a position reaches its end.")
    expect_close(q_rot.norm(dim=-1), q.norm(dim=-1), what + " vector norms", atol=1e-4)


@visible("rope.RotaryEmbedding", "q or k with the wrong last dimension is a ValueError")
def _(ns):
    module = ns.RotaryEmbedding(8)
    q, k = torch.zeros(3, 6), torch.zeros(3, 8)
    expect_value_error(module, q, k, torch.arange(3), mentions=("q", "d"),
                       what="RotaryEmbedding(8)(q of width 6, k of width 8, positions)")


# ---------------------------------------------------------------- cached_rope_attention

def _padded(pads, t, seed):
    """q, k, v (B, 1 head, t, 4 or 3) and a 0/1 mask with pads[b] padding tokens on the left of row b."""
    return left_padded_batch(pads, t, heads=1, d=4, d_v=3, seed=seed)


@visible("rope.cached_rope_attention", "a left-padded row equals softmax(causal rotated scores) v of the row alone")
def _(ns):
    q, k, v, mask = _padded((2, 0), 5, seed=6)
    what = call_text("cached_rope_attention", q, k, v, mask, base=100.0) + " (row 0 has 2 padding tokens)"
    out, _ = call_pair(ns.cached_rope_attention, what, q, k, v, mask, None, 100.0)
    for b, pad in ((0, 2), (1, 0)):
        # the row alone: real tokens at positions 0, 1, 2, ...; pairs (0, 2), (1, 3) turn by position * (1, 1/10)
        positions = torch.arange(5 - pad)
        q_rot = _pair_rotation(q[b, 0, pad:], positions, ((0, 2), (1, 3)), (1.0, 0.1))
        k_rot = _pair_rotation(k[b, 0, pad:], positions, ((0, 2), (1, 3)), (1.0, 0.1))
        scores = (q_rot @ k_rot.T / 2.0).masked_fill(~torch.ones(5 - pad, 5 - pad).tril().bool(), float("-inf"))
        expected = torch.softmax(scores, dim=-1) @ v[b, 0, pad:]
        expect_close(out[b, 0, pad:], expected, f"{what}, row {b}, its {5 - pad} real tokens", atol=1e-5,
                     hint="Number each row's real tokens 0, 1, 2, ... from the mask and leave padding keys out.")


@visible("rope.cached_rope_attention", "prefill, then one token per call with the returned cache, equals one full pass")
def _(ns):
    expect_decoding_matches_full_pass(
        ns.cached_rope_attention, *_padded((0, 3, 1), 7, seed=7), prefill=4, atol=1e-5,
        hint="A new token's position is the number of real tokens before it (the mask's count), "
             "never 0 and never counted differently from the prefill.")


@visible("rope.cached_rope_attention", "the cache grows by T_new; a mask of the wrong length is a ValueError")
def _(ns):
    expect_cache_and_mask_length(ns.cached_rope_attention, "cached_rope_attention", *_padded((1, 0), 3, seed=8))
