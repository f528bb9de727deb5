"""One small call of what a convention made, before anything is graded through it.

Signatures that fit do not prove the code is the library the convention expects: a function of
another layout can pass with one sequence and crash with two. So each contract name a convention
makes is called once on a small input (batch 2, 2 heads, distinct positions out of order) and
must return what the contract says in shape and type; otherwise `NotRecognised`, which the grader
reports as "not recognised", never as a wrong answer. Values are not looked at here: wrong
values are the hidden tests' business.
"""
from __future__ import annotations

import torch


class NotRecognised(Exception):
    """What a convention made does not behave like the library it expects."""


def _inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 5, 8, generator=generator)  # (batch, heads, T, D)
    positions = torch.tensor([4, 0, 2, 7, 1])
    return x, positions


def _expect(value, shapes: list[tuple[int, ...]]):
    values = value if len(shapes) > 1 else (value,)
    if not isinstance(values, (tuple, list)) or len(values) != len(shapes):
        raise NotRecognised(f"returned {type(value).__name__}, expected {len(shapes)} tensor(s)")
    for got, shape in zip(values, shapes):
        if not isinstance(got, torch.Tensor):
            raise NotRecognised(f"returned {type(got).__name__}, expected a tensor of shape {shape}")
        if tuple(got.shape) != shape or not got.is_floating_point():
            raise NotRecognised(f"returned a {got.dtype} tensor of shape {tuple(got.shape)}, expected {shape}")


def _call(name: str, made):
    x, positions = _inputs()
    if name == "apply_rope":
        _expect(made(x, positions), [tuple(x.shape)])
    elif name == "rope_inv_freq":
        _expect(made(8), [(4,)])
    elif name == "RotaryEmbedding":
        _expect(made(8)(x, x.flip(-1), positions), [tuple(x.shape)] * 2)
    elif name == "alibi_slopes":
        _expect(made(4), [(4,)])
    elif name == "alibi_bias":
        _expect(made(torch.tensor([0.5, 0.25]), positions, positions[:3]), [(2, 5, 3)])
    elif name == "alibi_attention":
        _expect(made(x, x, x[..., :4]), [(2, 2, 5, 4)])
    elif name == "linear_scaled_inv_freq":
        _expect(made(8, 10000.0, 4.0), [(4,)])
    elif name == "llama3_inv_freq":  # the contract's defaults: code with Llama 3.1's fixed parameters passes
        _expect(made(8, 10000.0), [(4,)])
    elif name == "dynamic_ntk_inv_freq":
        _expect(made(8, 10000.0, 2.0, 32, 16), [(4,)])
    elif name == "yarn_inv_freq":
        inv_freq, factor = made(8, 10000.0, 4.0, 16)
        _expect(inv_freq, [(4,)])
        if not isinstance(factor, (int, float, torch.Tensor)) or torch.as_tensor(factor).numel() != 1:
            raise NotRecognised(f"returned {type(factor).__name__} as its attention factor, expected a number")
    elif name == "ntk_scaled_base":
        if torch.as_tensor(made(10000.0, 2.0, 8)).numel() != 1:
            raise NotRecognised("returned more than one number")
    elif not callable(made):  # a name without a probe of its own: at least something to call
        raise NotRecognised(f"is a {type(made).__name__}, not a function or class")


def probe(name: str, made) -> None:
    """Call `made` (the contract's `name`) once; NotRecognised if it fails or returns the wrong shape."""
    try:
        _call(name, made)
    except NotRecognised as err:
        raise NotRecognised(f"{name}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any failure of the probe call means: not this library
        raise NotRecognised(f"{name} raised {type(err).__name__}: {err}") from None
