"""Helpers every convention's adapter source starts with (run in the learner's process; every
name they add starts with ``_course_`` so none of the learner's is touched)."""

PRELUDE = '''
import math as _course_math
import torch as _course_torch


def _course_positions(x, positions):
    """positions as a tensor on x's device, broadcast to x.shape[:-1] (one per token)"""
    return _course_torch.as_tensor(positions, device=x.device).expand(x.shape[:-1])


def _course_whole(positions, who):
    """integer positions, for a convention that looks them up in a table"""
    if positions.is_floating_point():
        if not bool((positions == positions.round()).all()):
            raise ValueError(f"positions must be whole numbers: {who} looks them up in a table")
        positions = positions.round()
    return positions.long()


def _course_pairing(x, rotate, native_interleaved, interleaved):
    """rotate(x) pairs features the convention's own way; the other pairing is reached by reordering
    the features (and any in-place change rotate makes to its input is passed on to x)"""
    if bool(interleaved) == native_interleaved:
        return rotate(x)
    half = x.shape[-1] // 2
    k = _course_torch.arange(half, device=x.device)
    to_interleaved = _course_torch.stack((k, k + half), dim=-1).flatten()
    to_half_split = _course_torch.argsort(to_interleaved)
    into, back = (to_interleaved, to_half_split) if native_interleaved else (to_half_split, to_interleaved)
    given = x[..., into]
    sent = given.clone() if x.device.type != "meta" else None
    out = rotate(given)
    if sent is not None and not _course_torch.equal(given, sent):
        x[..., into] = given
    return out[..., back]


def _course_rope(x, rotary_dim, interleaved, native_interleaved, rotate):
    """apply_rope's contract around a convention's rotation of whole feature vectors"""
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 2 <= r <= d:
        raise ValueError(f"rotary_dim must be even with 2 <= rotary_dim <= d={d}, got rotary_dim={r}")
    turned = _course_pairing(x[..., :r], rotate, native_interleaved, interleaved)
    return turned if r == d else _course_torch.cat((turned, x[..., r:]), dim=-1)
'''
