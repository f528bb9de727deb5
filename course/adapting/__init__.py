"""Helpers for grading RoPE/ALiBi code written to another library's signatures.

For the user's ``--adapter`` file and for the built-in conventions (course.adapting.conventions);
both run in the learner's process, so this package imports only torch and the standard library.
The course's tensors keep features last, ``x (..., T, D)``; libraries want ``(B, T, H, D)``,
``(B, H, T, D)`` or ``(T, B, H, D)``, tables looked up by whole positions, one pairing of features,
float32 inside. README ("Adapter helpers") shows a six-line adapter for gpt-fast made with them
(tests/test_conventions.py grades code through it).
"""
from __future__ import annotations

import math

import torch

LAYOUTS = ("bthd", "bhtd", "tbhd")


def positions_like(x: torch.Tensor, positions) -> torch.Tensor:
    """`positions` on x's device, one per token (broadcast to ``x.shape[:-1]``): the contract lets
    them be ``(T,)`` or anything broadcastable, a library wants them per token."""
    return torch.as_tensor(positions, device=x.device).expand(x.shape[:-1])


def whole(positions: torch.Tensor, who: str) -> torch.Tensor:
    """Integer positions, for code that looks positions up in a table; a fractional one is a
    ValueError naming `who` (the table cannot express it: its checks are excused by the feature
    ``fractional_positions``)."""
    if positions.is_floating_point():
        if not bool((positions == positions.round()).all()):
            raise ValueError(f"positions must be whole numbers: {who} looks them up in a table")
        positions = positions.round()
    return positions.long()


def table_rows(x: torch.Tensor, positions, who: str) -> tuple[torch.Tensor, int]:
    """(the rows of a position table each token of x reads, shaped ``x.shape[:-1]``; how many rows
    the table needs), so that a table is built just long enough for the positions asked."""
    rows = whole(positions_like(x, positions), who)
    return rows, (int(rows.max()) + 1 if rows.numel() else 1)


def to_layout(x: torch.Tensor, layout: str, tokens: bool = False) -> torch.Tensor:
    """The course's ``x (..., T, D)`` as a 4-D tensor in `layout` ('bthd', 'bhtd' or 'tbhd'): the
    leading dimensions become the batch and there is one head (rotations and per-head attention do
    not mix heads). With ``tokens=True`` every token is its own position: ``(1, N, 1, D)`` for
    libraries whose table is indexed by sequence position only (give each token its own row)."""
    d = x.shape[-1]
    bthd = x.reshape(1, -1, 1, d) if tokens else x.reshape(-1, x.shape[-2], 1, d)
    return _swap(bthd, layout)


def from_layout(y: torch.Tensor, layout: str, like: torch.Tensor) -> torch.Tensor:
    """The inverse of `to_layout` (either form): `y` in `layout` back to the shape of `like`
    (``(..., T, D)``; the last dimension is y's)."""
    return _swap(y, layout).reshape(like.shape[:-1] + y.shape[-1:])


def _swap(x: torch.Tensor, layout: str) -> torch.Tensor:
    """(B, T, H, D) to `layout`, and back: each layout is one transpose away, its own inverse."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return {"bthd": x, "bhtd": x.transpose(1, 2), "tbhd": x.transpose(0, 1)}[layout]


def heads_to_layout(q: torch.Tensor, layout: str) -> torch.Tensor:
    """The course's ``q (..., H, T, D)`` (attention) as a 4-D tensor in `layout`, leading dimensions
    as the batch."""
    h, t, d = q.shape[-3:]
    return _swap(q.reshape(-1, h, t, d).transpose(1, 2), layout)


def heads_from_layout(y: torch.Tensor, layout: str, like: torch.Tensor) -> torch.Tensor:
    """The inverse of `heads_to_layout`, back to the leading dimensions of `like` (``(..., H, T, D)``)."""
    bhtd = _swap(y, layout).transpose(1, 2)
    return bhtd.reshape(like.shape[:-3] + bhtd.shape[1:])


def pairing(x: torch.Tensor, rotate, native_interleaved: bool, interleaved: bool) -> torch.Tensor:
    """``rotate(x)`` pairs features its own way (interleaved ``(2k, 2k+1)`` if `native_interleaved`,
    else half-split ``(k, k + D/2)``); the other pairing is reached by reordering the features around
    it. An in-place change `rotate` makes to what it was given is passed on to `x`, so that the
    grader's check that inputs are left alone still sees it."""
    if bool(interleaved) == bool(native_interleaved):
        return rotate(x)
    half = x.shape[-1] // 2
    k = torch.arange(half, device=x.device)
    to_interleaved = torch.stack((k, k + half), dim=-1).flatten()
    to_half_split = torch.argsort(to_interleaved)
    into, back = (to_interleaved, to_half_split) if native_interleaved else (to_half_split, to_interleaved)
    given = x[..., into]
    sent = given.clone() if x.device.type != "meta" else None
    out = rotate(given)
    if sent is not None and not torch.equal(given, sent):
        x[..., into] = given
    return out[..., back]


def rope(x: torch.Tensor, rotate, native_interleaved: bool, interleaved: bool = False, rotary_dim=None) -> torch.Tensor:
    """apply_rope's contract around a library's rotation of whole feature vectors ``rotate(y)``:
    checks `rotary_dim` (a ValueError naming it), rotates the first `rotary_dim` features in the
    pairing asked (see `pairing`) and passes the rest through."""
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 2 <= r <= d:
        raise ValueError(f"rotary_dim must be even with 2 <= rotary_dim <= d={d}, got rotary_dim={r}")
    turned = pairing(x[..., :r], rotate, native_interleaved, interleaved)
    return turned if r == d else torch.cat((turned, x[..., r:]), dim=-1)


def unscaled_inv_freq(d: int, base: float, device=None) -> torch.Tensor:
    """The inverse frequencies ``base^(-2k/d)``, float32 as libraries compute them, for library code
    that is handed them (or cos and sin made of them) by its caller: flash-attn's
    ``apply_rotary_emb_torch``, Llama 3.1's ``apply_scaling(freqs)``."""
    return 1.0 / (float(base) ** (torch.arange(0, d, 2, dtype=torch.float32, device=device) / d))


def in_float32(function, *tensors: torch.Tensor, **kwargs):
    """``function`` on float32 copies of `tensors`, its tensor result (or tuple of them) back in the
    first one's dtype: the contract computes in float32 and returns the input's dtype, a library
    often computes in whatever it is given."""
    dtype = tensors[0].dtype
    out = function(*(t.float() for t in tensors), **kwargs)
    return tuple(o.to(dtype) for o in out) if isinstance(out, (tuple, list)) else out.to(dtype)


def attention_with_bias(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias, causal: bool = True) -> torch.Tensor:
    """Attention around a library's bias (ALiBi code that only builds the bias): float32 scores
    ``q k^T / sqrt(d) + bias``, the causal mask as a mask (apart from the bias), softmax, ``@ v``,
    in q's dtype. `bias` broadcasts to ``(..., H, T_q, T_k)``."""
    scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1]) + torch.as_tensor(bias).float()
    if causal:  # the queries are the last T_q positions
        k_pos = torch.arange(k.shape[-2], device=q.device)
        scores = scores.masked_fill(k_pos > k_pos[k.shape[-2] - q.shape[-2]:, None], float("-inf"))
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)
