"""Visible checks for section 2, Formal setup (notebook 02_setup)."""
from __future__ import annotations

import torch

from course.checking import call_text, expect_close, expect_dtype, expect_equal, expect_value_error
from course.learner.visible_checks import visible


def _ids_by_counting(mask):
    """Position ids written out with a counter per row: real tokens 0, 1, 2, ...; padding 0."""
    rows = []
    for row in mask.tolist():
        count, ids = 0, []
        for real in row:
            ids.append(count if real else 0)
            count += bool(real)
        rows.append(ids)
    return torch.tensor(rows, dtype=torch.long)


@visible("setup.position_ids_from_mask", "right padding: real tokens count 0, 1, 2, ...; padding gets 0")
def _(ns):
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    expect_equal(ns.position_ids_from_mask(mask), _ids_by_counting(mask), call_text("position_ids_from_mask", mask),
                 hint="number the real tokens (mask 1) from 0; padding positions get 0 (an int64 tensor).")


@visible("setup.position_ids_from_mask", "left padding: counting starts at the first real token")
def _(ns):
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
    expect_equal(ns.position_ids_from_mask(mask), _ids_by_counting(mask), call_text("position_ids_from_mask", mask),
                 hint="the first real token is position 0 whatever column it sits in; padding does not count.")


@visible("setup.position_ids_from_mask", "bool masks and all-padding rows work")
def _(ns):
    mask = torch.tensor([[False, True, True], [False, False, False]])
    expect_equal(ns.position_ids_from_mask(mask), _ids_by_counting(mask), call_text("position_ids_from_mask", mask),
                 hint="a row with no real token is all padding: all zeros (and never -1).")


@visible("setup.next_position_ids", "continues right after each row's real tokens")
def _(ns):
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]])
    # A row with n real tokens used ids 0 .. n-1, so its next token is n.
    expected = torch.tensor([[sum(row)] for row in mask.tolist()])
    expect_equal(ns.next_position_ids(mask), expected, call_text("next_position_ids", mask),
                 hint="count the real tokens of the row (not its length: padding has no position).")


@visible("setup.next_position_ids", "n_new tokens get consecutive ids")
def _(ns):
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    expected = torch.tensor([[sum(row) + i for i in range(3)] for row in mask.tolist()])
    expect_equal(ns.next_position_ids(mask, 3), expected, call_text("next_position_ids", mask, n_new=3))


@visible("setup.next_position_ids", "n_new = 0 is a ValueError naming n_new")
def _(ns):
    mask = torch.ones(1, 2, dtype=torch.long)
    expect_value_error(ns.next_position_ids, mask, 0, mentions="n_new", what=call_text("next_position_ids", mask, 0))


def _table(length, d):
    """A table whose row r is (r, r, ..., r) + (0, 0.1, 0.2, ...): every row is recognisable."""
    return torch.arange(length, dtype=torch.float32)[:, None] + 0.1 * torch.arange(d, dtype=torch.float32)


@visible("setup.add_positions", "default ids add rows 0..T-1 to every sequence")
def _(ns):
    x = torch.ones(2, 3, 4)
    table = _table(6, 4)
    expected = torch.stack([x[b] + table[:3] for b in range(2)])
    expect_close(ns.add_positions(x, table), expected, call_text("add_positions", x, table),
                 hint="without position_ids, token t gets table row t.")


@visible("setup.add_positions", "(B, T) ids pick rows per sequence")
def _(ns):
    x = torch.zeros(2, 3, 2)
    table = _table(5, 2)
    ids = torch.tensor([[0, 0, 1], [2, 3, 4]])
    expected = torch.stack([torch.stack([table[ids[b, t]] for t in range(3)]) for b in range(2)])
    expect_close(ns.add_positions(x, table, ids), expected, call_text("add_positions", x, table, ids))


@visible("setup.add_positions", "an id outside the table is a ValueError naming L")
def _(ns):
    x, table = torch.zeros(1, 3, 2), _table(3, 2)
    for ids in (torch.tensor([1, 2, 3]), torch.tensor([-1, 0, 1])):
        expect_value_error(ns.add_positions, x, table, ids, mentions="L",
                           what=call_text("add_positions", x, table, ids),)


@visible("setup.add_positions", "does not modify x")
def _(ns):
    x, table = torch.zeros(1, 2, 2), _table(2, 2)
    ns.add_positions(x, table)
    expect_equal(x, torch.zeros(1, 2, 2), "x after " + call_text("add_positions", x, table),
                 hint="return x + rows as a new tensor; `x += ...` changes the caller's tensor.")


@visible("setup.relative_positions", "r[i, j] = q_pos[i] - k_pos[j]")
def _(ns):
    q_pos, k_pos = torch.tensor([3, 5]), torch.tensor([0, 1, 5])
    expected = torch.tensor([[i - j for j in k_pos.tolist()] for i in q_pos.tolist()])
    expect_equal(ns.relative_positions(q_pos, k_pos), expected, call_text("relative_positions", q_pos, k_pos),
                 hint="query minus key: positive when the key lies in the query's past (an int64 tensor).")


@visible("setup.relative_positions", "cached decoding: the last queries against all keys")
def _(ns):
    q_pos, k_pos = torch.tensor([6, 7]), torch.arange(8)
    expected = torch.tensor([[i - j for j in range(8)] for i in (6, 7)])
    expect_equal(ns.relative_positions(q_pos, k_pos), expected, call_text("relative_positions", q_pos, k_pos))


@visible("setup.interpolated_positions", "squeezes positions by train_len / target_len")
def _(ns):
    positions = torch.arange(8)
    expected = torch.tensor([p * 4 / 8 for p in range(8)])  # 8 positions squeezed into a range of 4
    got = ns.interpolated_positions(positions, 4, 8)
    expect_close(got, expected, call_text("interpolated_positions", positions, 4, 8),
                 hint="multiply by train_len / target_len (< 1): the last position lands inside the trained range.")
    expect_dtype(got, torch.float32, call_text("interpolated_positions", positions, 4, 8))


@visible("setup.interpolated_positions", "unchanged when target_len <= train_len")
def _(ns):
    positions = torch.arange(5)
    for target in (5, 3):
        got = ns.interpolated_positions(positions, 5, target)
        expect_close(got, positions.float(), call_text("interpolated_positions", positions, 5, target),
                     hint="interpolation is only for contexts longer than the training length.")
        expect_dtype(got, torch.float32, call_text("interpolated_positions", positions, 5, target))
