"""Visible checks for section 4 (learned absolute positions)."""
from __future__ import annotations

import torch
from torch import nn

from course.checking import call_text, expect_close, expect_dtype, expect_equal, expect_shape, expect_value_error
from course.learner.visible_checks import visible


def _module(ns, max_len, d, seed=0):
    """Build the learner's module under a fixed seed without disturbing their random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ns.LearnedPositionalEmbedding(max_len, d)


# ---- LearnedPositionalEmbedding --------------------------------------------------------

@visible("learned.LearnedPositionalEmbedding", "weight is a trainable (max_len, d) Parameter, normal std 0.02")
def _(ns):
    module = _module(ns, 256, 64)
    what = "LearnedPositionalEmbedding(256, 64).weight"
    weight = getattr(module, "weight", None)
    if not isinstance(weight, nn.Parameter):
        raise AssertionError(f"{what} is {type(weight).__name__}, expected an nn.Parameter "
                             "(a plain tensor is not trained and not saved with the model)")
    expect_shape(weight, (256, 64), what)
    if not weight.requires_grad:
        raise AssertionError(f"{what} has requires_grad=False; it must be trainable")
    # 16384 draws of N(0, 0.02^2): the sample std is within 2% of 0.02 with overwhelming odds
    std, mean = weight.detach().double().std().item(), weight.detach().double().mean().item()
    if not (0.0188 < std < 0.0212) or abs(mean) > 0.002:
        raise AssertionError(f"{what} has mean {mean:.4f} and std {std:.4f}; expected a normal init "
                             "with mean 0 and std 0.02 (nn.init.normal_(w, std=0.02))")


@visible("learned.LearnedPositionalEmbedding", "adds row t to position t by default, and row ids[b, t] when given")
def _(ns):
    module = _module(ns, 10, 4)
    weight = module.weight.detach().clone()
    x = torch.randn(2, 3, 4)
    what = call_text("LearnedPositionalEmbedding(10, 4)", x)
    expect_close(module(x), x + weight[:3], what, atol=1e-6, hint="Default position ids are 0 .. T-1.")
    ids = torch.tensor([[9, 0, 4], [2, 2, 7]])
    what = call_text("LearnedPositionalEmbedding(10, 4)", x, ids)
    expect_close(module(x, ids), x + weight[ids], what, atol=1e-6)


@visible("learned.LearnedPositionalEmbedding", "an id outside [0, max_len) is a ValueError naming max_len")
def _(ns):
    module = _module(ns, 5, 4)
    x = torch.zeros(1, 3, 4)
    for ids in (torch.tensor([0, 1, 5]), torch.tensor([-1, 0, 1])):
        expect_value_error(module, x, ids, mentions="max_len",
                           what=call_text("LearnedPositionalEmbedding(5, 4)", x, ids))
    long_x = torch.zeros(1, 6, 4)
    expect_value_error(module, long_x, mentions="max_len",
                       what=call_text("LearnedPositionalEmbedding(5, 4)", long_x))


@visible("learned.LearnedPositionalEmbedding", "gradients reach exactly the rows used")
def _(ns):
    module = _module(ns, 6, 3)
    x = torch.zeros(2, 3, 3)
    ids = torch.tensor([[1, 4, 4], [1, 0, 4]])
    what = call_text("LearnedPositionalEmbedding(6, 3)", x, ids) + ".sum() -> weight.grad"
    out = module(x, ids)
    if not (isinstance(out, torch.Tensor) and out.requires_grad):
        raise AssertionError(f"{what}: the output does not depend on a trainable weight "
                             "(is weight an nn.Parameter, and is nothing detached?)")
    out.sum().backward()
    grad = module.weight.grad
    if grad is None:
        raise AssertionError(f"{what} is None: the output does not depend on weight")
    # d(sum)/d(row r) = number of times id r is used, in every feature
    counts = torch.bincount(ids.flatten(), minlength=6).to(grad.dtype)
    expect_close(grad, counts[:, None].expand(6, 3), what, atol=1e-6,
                 hint="Row r should collect one unit of gradient per use; unused rows none.")


# ---- resize_position_table -------------------------------------------------------------

@visible("learned.resize_position_table", "keeps the first and last rows, shape (new_len, d) and dtype")
def _(ns):
    table = torch.randn(5, 3, dtype=torch.float64)
    what = call_text("resize_position_table", table, 9)
    got = ns.resize_position_table(table, 9)
    expect_shape(got, (9, 3), what)
    expect_dtype(got, torch.float64, what)
    expect_close(got[[0, -1]], table[[0, -1]], what + " first and last rows", atol=1e-6, rtol=1e-6,
                 hint="Old row r sits at r*(new_len-1)/(old_len-1): row 0 at 0, the last at new_len-1.")


@visible("learned.resize_position_table", "two rows become evenly spaced blends")
def _(ns):
    table = torch.tensor([[0.0, 10.0], [4.0, -2.0]])
    what = call_text("resize_position_table", table, 5)
    got = ns.resize_position_table(table, 5)
    # row j sits at old coordinate j/4 between the two rows
    expected = torch.stack([table[0] * (1 - j / 4) + table[1] * (j / 4) for j in range(5)])
    expect_close(got, expected, what, atol=1e-6, hint="Interpolate linearly; do not copy the nearest row.")


@visible("learned.resize_position_table", "a table linear in the position stays linear, also when shrinking")
def _(ns):
    old_len = 7
    slope, offset = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.0, 3.0, 1.0])
    table = offset + torch.arange(old_len, dtype=torch.float32)[:, None] * slope
    for new_len in (13, 4):
        coords = torch.arange(new_len, dtype=torch.float32) * (old_len - 1) / (new_len - 1)
        what = call_text("resize_position_table", table, new_len)
        expect_close(ns.resize_position_table(table, new_len), offset + coords[:, None] * slope, what, atol=1e-5)


@visible("learned.resize_position_table", "new_len < 2 is a ValueError naming new_len; input untouched")
def _(ns):
    table = torch.randn(4, 2)
    before = table.clone()
    expect_value_error(ns.resize_position_table, table, 1, mentions="new_len",
                       what=call_text("resize_position_table", table, 1))
    got = ns.resize_position_table(table, 4)
    expect_equal(table, before, "the table after resize_position_table(table, 4)",
                 hint="Do not modify the input in place.")
    if got is table:
        raise AssertionError("resize_position_table(table, 4) returned the input tensor itself; return a new tensor")
