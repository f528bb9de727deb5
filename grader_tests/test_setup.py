"""Hidden suite, section 2 (formal setup).

References are independent of solutions/: position ids are counted token by token in plain
Python, offsets and interpolated positions are written out in float64 NumPy or Python.
"""
import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_equal,
                             expect_value_error, halted)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise



ON_DEVICE = "Create every helper tensor on the input's device."


# ---------------------------------------------------------------- relative_positions
def ref_relative(q_pos, k_pos):
    return torch.tensor([[int(i) - int(j) for j in k_pos] for i in q_pos], dtype=torch.long)


def relative_mistakes(q_pos, k_pos):
    return {
        mistake("offset-sign", "k_pos - q_pos: this course writes r[i, j] = q_pos[i] - k_pos[j] (T5's code uses the "
                "opposite sign)"): -ref_relative(q_pos, k_pos),
        mistake("positions-ignored", "ignoring the given positions and using 0, 1, 2, ..."):
            ref_relative(range(len(q_pos)), range(len(k_pos))),
    }


def check_relative(submission, q_pos, k_pos):
    what = call_text("relative_positions", q_pos, k_pos)
    got = submission.relative_positions(q_pos, k_pos)
    expected = ref_relative(q_pos.tolist(), k_pos.tolist())
    hint = closest_mistake(got, relative_mistakes(q_pos.tolist(), k_pos.tolist()))
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype != torch.long:
        expect_close(got.double(), expected.double(), what, atol=0, rtol=0, hint=hint)
    expect_equal(got, expected, what, hint=hint)


@exercise("setup.relative_positions", weight=2)
def test_relative_small(submission):
    """is q_pos[i] - k_pos[j]"""
    check_relative(submission, torch.arange(3), torch.arange(4))


@exercise("setup.relative_positions")
def test_relative_given_positions(submission):
    """uses the given positions (cached queries, unordered keys)"""
    check_relative(submission, torch.tensor([6, 7]), torch.arange(8))
    check_relative(submission, torch.tensor([4]), torch.tensor([9, 0, 3, 4]))


@exercise("setup.relative_positions")
@pytest.mark.robustness
def test_relative_int64(submission):
    """returns int64 also for int32 positions"""
    q_pos, k_pos = torch.tensor([1, 2], dtype=torch.int32), torch.tensor([0, 5, 1], dtype=torch.int32)
    got = submission.relative_positions(q_pos, k_pos)
    expect_dtype(got, torch.long, call_text("relative_positions", q_pos, k_pos))


@exercise("setup.relative_positions")
@pytest.mark.robustness
def test_relative_device(submission):
    """keeps the result on the positions' device"""
    same_on_second_device(submission, submission.relative_positions, torch.tensor([3, 1, 4]), torch.arange(4),
                          hint=ON_DEVICE)


@exercise("setup.relative_positions")
@pytest.mark.robustness
def test_relative_inputs(submission):
    """leaves the positions unchanged"""
    submission.relative_positions(torch.arange(3), torch.arange(5))
    if submission.mutated_inputs():
        raise Mismatch(f"relative_positions changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("setup.relative_positions")
@pytest.mark.uses("argument_checks")
def test_relative_not_1d(submission):
    """rejects positions that are not 1-D with a ValueError naming them"""
    q2, k = torch.arange(4).reshape(2, 2), torch.arange(3)
    expect_value_error(submission.relative_positions, q2, k, mentions="q_pos", what=call_text("relative_positions", q2, k))
    expect_value_error(submission.relative_positions, k, q2, mentions="k_pos", what=call_text("relative_positions", k, q2))


# ---------------------------------------------------------------- position_ids_from_mask
def ref_ids(mask, padding_value=0, start=0, clamp_repeat=False, no_zeroing=False):
    """Counted token by token; the keyword arguments reproduce known mistakes."""
    rows = []
    for row in mask.tolist():
        count, ids = 0, []
        for real in row:
            if real:
                ids.append(count + start)
                count += 1
            elif no_zeroing:
                ids.append(count - 1 + start)
            elif clamp_repeat:
                ids.append(max(count - 1, 0))
            else:
                ids.append(padding_value)
        rows.append(ids)
    return torch.tensor(rows, dtype=torch.long)


def ids_mistakes(mask):
    arange = torch.arange(mask.shape[1]).expand(mask.shape[0], -1)
    not_zeroed, clamped = ref_ids(mask, no_zeroing=True), ref_ids(mask, clamp_repeat=True)
    named = {mistake("positions-ignored", "arange(T) in every row: that numbers columns, not tokens (left-padded "
                     "rows start late, padding gets nonzero ids)"): arange}
    if torch.equal(not_zeroed, clamped):  # no left padding here: the two mistakes look the same
        named[mistake("padding-ids", "cumsum(mask) - 1 without zeroing the padding (clamping at 0 does not help: "
                      "right padding then repeats the last id): padding must get 0")] = not_zeroed
    else:
        named[mistake("padding-ids", "cumsum(mask) - 1 without zeroing the padding: padding must get 0")] = not_zeroed
        named[mistake("padding-ids", "(cumsum(mask) - 1).clamp(min=0): right padding then repeats the last id "
                      "instead of 0")] = clamped
    named[mistake("padding-ids", "padding set to 1 (a convention some libraries use): this course puts 0 on "
                  "padding")] = ref_ids(mask, 1)
    named[mistake("count-from-one", "counting from 1: the first real token is position 0")] = ref_ids(mask, start=1)
    return named


def check_ids(submission, mask):
    what = call_text("position_ids_from_mask", mask)
    got = submission.position_ids_from_mask(mask)
    expected = ref_ids(mask)
    hint = closest_mistake(got, ids_mistakes(mask))
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype != torch.long:
        expect_close(got.double(), expected.double(), what, atol=0, rtol=0, hint=hint)
    expect_equal(got, expected, what, hint=hint)


@exercise("setup.position_ids_from_mask", weight=2)
def test_ids_left_padding(submission):
    """numbers the real tokens of left-padded rows from 0"""
    check_ids(submission, torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]]))


@exercise("setup.position_ids_from_mask", weight=2)
def test_ids_right_padding(submission):
    """gives padding 0 in right-padded rows"""
    check_ids(submission, torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]))


@exercise("setup.position_ids_from_mask")
def test_ids_all_padding_and_bool(submission):
    """handles bool masks and rows that are all padding"""
    check_ids(submission, torch.tensor([[False, False, False], [False, True, True], [True, False, True]]))


@exercise("setup.position_ids_from_mask")
def test_ids_random_batch(submission):
    """works on a larger batch with padding anywhere"""
    mask = (torch.rand(6, 9, generator=torch.Generator().manual_seed(1)) > 0.4).long()
    check_ids(submission, mask)


@exercise("setup.position_ids_from_mask")
@pytest.mark.robustness
def test_ids_int32_mask(submission):
    """returns int64 for an int32 mask"""
    mask = torch.tensor([[0, 1, 1]], dtype=torch.int32)
    got = submission.position_ids_from_mask(mask)
    expect_dtype(got, torch.long, call_text("position_ids_from_mask", mask))


@exercise("setup.position_ids_from_mask")
@pytest.mark.robustness
def test_ids_device(submission):
    """keeps the result on the mask's device"""
    same_on_second_device(submission, submission.position_ids_from_mask, torch.tensor([[0, 1, 1], [1, 1, 0]]),
                          hint=ON_DEVICE)


@exercise("setup.position_ids_from_mask")
@pytest.mark.robustness
def test_ids_inputs(submission):
    """leaves the mask unchanged"""
    submission.position_ids_from_mask(torch.tensor([[0, 1, 1], [1, 1, 0]]))
    if submission.mutated_inputs():
        raise Mismatch(f"position_ids_from_mask changed its {', '.join(submission.mutated_inputs())} in place",
                       "in-place")


@exercise("setup.position_ids_from_mask")
@pytest.mark.uses("argument_checks")
def test_ids_not_2d(submission):
    """rejects a mask that is not (B, T) with a ValueError naming attention_mask"""
    mask = torch.ones(4, dtype=torch.long)
    expect_value_error(submission.position_ids_from_mask, mask, mentions="attention_mask",
                       what=call_text("position_ids_from_mask", mask))


# ---------------------------------------------------------------- next_position_ids
def ref_next(mask, n_new=1, base="count"):
    rows = []
    for row in mask.tolist():
        n = {"count": sum(bool(r) for r in row), "length": len(row), "zero": 0,
             "minus_one": sum(bool(r) for r in row) - 1}[base]
        rows.append([n + i for i in range(n_new)])
    return torch.tensor(rows, dtype=torch.long)


def check_next(submission, mask, *n_new):
    what = call_text("next_position_ids", mask, *n_new)
    got = submission.next_position_ids(mask, *n_new)
    expected = ref_next(mask, *n_new)
    hint = closest_mistake(got, {
        mistake("counts-padding", "the row length T (counting padding): a row's next position is its number of real "
                "tokens"): ref_next(mask, *n_new, base="length"),
        mistake("positions-restart", "ids restarting at 0 for the new tokens: they continue after the prompt"):
            ref_next(mask, *n_new, base="zero"),
        mistake("off-by-one", "off by one: n - 1 is the id of the last real token, the next one is n"):
            ref_next(mask, *n_new, base="minus_one"),
    })
    if isinstance(got, torch.Tensor) and got.numel() == expected.numel() and got.shape != expected.shape:
        raise Mismatch(f"{what} returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
                       "one row per sequence and one column per new token (B, n_new)", "squeezed")
    expect_equal(got, expected, what, hint=hint)


@exercise("setup.next_position_ids", weight=2)
def test_next_left_padding(submission):
    """continues each left-padded row after its real tokens"""
    check_next(submission, torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]]))


@exercise("setup.next_position_ids")
def test_next_several(submission):
    """gives n_new consecutive ids per row"""
    check_next(submission, torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]]), 3)


@exercise("setup.next_position_ids")
def test_next_bool_and_empty(submission):
    """handles bool masks and all-padding rows"""
    check_next(submission, torch.tensor([[False, False], [True, False], [True, True]]), 2)


@exercise("setup.next_position_ids")
@pytest.mark.robustness
def test_next_device(submission):
    """keeps the result on the mask's device"""
    same_on_second_device(submission, submission.next_position_ids, torch.tensor([[0, 1, 1], [1, 1, 0]]), 2,
                          hint=ON_DEVICE)


@exercise("setup.next_position_ids")
@pytest.mark.robustness
def test_next_inputs(submission):
    """leaves the mask unchanged"""
    submission.next_position_ids(torch.tensor([[0, 1, 1], [1, 1, 0]]), 2)
    if submission.mutated_inputs():
        raise Mismatch(f"next_position_ids changed its {', '.join(submission.mutated_inputs())} in place", "in-place")


@exercise("setup.next_position_ids")
@pytest.mark.uses("argument_checks")
def test_next_bad_n_new(submission):
    """rejects n_new < 1 with a ValueError naming n_new"""
    mask = torch.ones(2, 3, dtype=torch.long)
    expect_value_error(submission.next_position_ids, mask, 0, mentions="n_new", what=call_text("next_position_ids", mask, 0))


# ---------------------------------------------------------------- add_positions
def ref_add(x, table, ids=None):
    x64, t64 = x.double().numpy(), table.double().numpy()
    ids = np.arange(x.shape[-2]) if ids is None else np.asarray(ids)
    return torch.from_numpy(x64 + t64[ids])


def check_add(submission, x, table, *ids, **tolerance):
    tolerance = tolerance or dict(atol=1e-6, rtol=1e-6)
    what = call_text("add_positions", x, table, *ids)
    got = submission.add_positions(x, table, *ids)
    expected = ref_add(x, table, *ids)
    hint = ""
    if ids and ids[0] is not None:
        hint = closest_mistake(got, {mistake("positions-ignored", "ignoring position_ids (rows 0..T-1 were added)"):
                                         ref_add(x, table)})
    expect_close(got, expected, what, **tolerance, hint=hint)
    return got


@exercise("setup.add_positions", weight=2)
def test_add_default_ids(submission):
    """adds rows 0..T-1 of the table to every sequence by default"""
    check_add(submission, rand(2, 3, 4, seed=1), rand(5, 4, seed=2))


@exercise("setup.add_positions", weight=2)
def test_add_given_ids(submission):
    """uses (T,) ids for the whole batch and (B, T) ids per sequence"""
    x, table = rand(2, 3, 4, seed=3), rand(6, 4, seed=4)
    check_add(submission, x, table, torch.tensor([2, 0, 5]))
    check_add(submission, x, table, torch.tensor([[0, 0, 1], [3, 4, 5]]))


def expect_out_of_range_error(submission, x, table, ids):
    what = call_text("add_positions", x, table, ids)
    try:
        got = submission.add_positions(x, table, ids)
    except ValueError:
        expect_value_error(submission.add_positions, x, table, ids, mentions="L", what=what)
        return
    except Exception as err:  # noqa: BLE001 - the wrong error type is the learner's mistake
        if halted(err):  # it hung or crashed: no answer, no mistake to name
            raise
        raise Mismatch(f"{what} raised {type(err).__name__}({err}); expected a ValueError naming 'L'",
                       "no-value-error") from None
    length = table.shape[0]
    hint = closest_mistake(got, {
        mistake("ids-clamped", "ids clamped into [0, L): silently reusing the last row hides an input longer than "
                "the table"): ref_add(x, table, np.clip(ids.numpy(), 0, length - 1)),
        mistake("ids-clamped", "a negative id read from the end of the table (PyTorch indexing wraps around); ids "
                "below 0 are errors too"): ref_add(x, table, ids.numpy() % length),
    })
    raise Mismatch(f"{what} returned normally; expected a ValueError naming 'L' (the table has L={length} rows). "
                   + hint, hint.mistake or "no-value-error")


@exercise("setup.add_positions", weight=2)
@pytest.mark.uses("argument_checks")
def test_add_id_too_large(submission):
    """rejects an id >= L with a ValueError naming L"""
    expect_out_of_range_error(submission, rand(1, 3, 2, seed=5), rand(4, 2, seed=6), torch.tensor([2, 3, 4]))


@exercise("setup.add_positions")
@pytest.mark.uses("argument_checks")
def test_add_negative_id(submission):
    """rejects a negative id with a ValueError naming L"""
    expect_out_of_range_error(submission, rand(1, 3, 2, seed=7), rand(4, 2, seed=8), torch.tensor([-1, 0, 1]))


@exercise("setup.add_positions")
@pytest.mark.uses("argument_checks")
def test_add_too_long_by_default(submission):
    """rejects a sequence longer than the table when no ids are given"""
    x, table = rand(1, 5, 2, seed=9), rand(4, 2, seed=10)
    expect_value_error(submission.add_positions, x, table, mentions="L", what=call_text("add_positions", x, table))


@exercise("setup.add_positions")
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 2e-3), (torch.bfloat16, 2e-2), (torch.float64, 1e-6)])
def test_add_dtypes(submission, dtype, atol):
    """returns x's dtype"""
    x, table = rand(2, 3, 4, seed=11, dtype=dtype), rand(5, 4, seed=12)
    got = check_add(submission, x, table, torch.tensor([4, 1, 0]), atol=atol, rtol=atol)
    expect_dtype(got, dtype, call_text("add_positions", x, table, torch.tensor([4, 1, 0])))


@exercise("setup.add_positions")
@pytest.mark.robustness
def test_add_not_in_place(submission):
    """leaves x, the table and the ids unchanged"""
    submission.add_positions(rand(2, 3, 4, seed=13), rand(5, 4, seed=14), torch.tensor([[0, 1, 2], [2, 3, 4]]))
    if submission.mutated_inputs():
        raise Mismatch(f"add_positions changed its {', '.join(submission.mutated_inputs())} in place: return "
                       "x + rows as a new tensor instead of `x += ...`", "in-place")


@exercise("setup.add_positions")
@pytest.mark.uses("argument_checks")
def test_add_wrong_width(submission):
    """rejects a table whose width is not d with a ValueError naming table or x"""
    x, table = rand(1, 2, 4), rand(3, 5)
    expect_value_error(submission.add_positions, x, table, mentions=("table", "x"), what=call_text("add_positions", x, table))


# ---------------------------------------------------------------- interpolated_positions
def ref_interp(positions, train_len, target_len):
    p = np.asarray(positions, dtype=np.float64)
    return torch.from_numpy(p * train_len / target_len if target_len > train_len else p)


def interp_mistakes(positions, train_len, target_len):
    p = np.asarray(positions, dtype=np.float64)
    return {
        mistake("interpolation", "positions scaled also when target_len <= train_len: interpolation is only for "
                "longer inputs"): torch.from_numpy(p * train_len / target_len),
        mistake("interpolation", "the inverted ratio target_len / train_len: positions must shrink into the trained "
                "range"): torch.from_numpy(p * target_len / train_len if target_len > train_len else p),
        mistake("interpolation", "rounded or integer-divided positions: interpolated positions are fractional"):
            torch.from_numpy(np.floor(p * train_len / target_len) if target_len > train_len else p),
        mistake("interpolation", "the ratio (train_len - 1) / (target_len - 1); position interpolation uses "
                "train_len / target_len"):
            torch.from_numpy(p * (train_len - 1) / (target_len - 1) if target_len > train_len else p),
    }


def check_interp(submission, positions, train_len, target_len, dtypes=(torch.float32,)):
    what = call_text("interpolated_positions", positions, train_len, target_len)
    got = submission.interpolated_positions(positions, train_len, target_len)
    hint = closest_mistake(got, interp_mistakes(positions, train_len, target_len), atol=1e-6)
    expect_close(got, ref_interp(positions, train_len, target_len), what, atol=1e-6, rtol=1e-6, hint=hint)
    if got.dtype not in dtypes:
        expect_dtype(got, dtypes[0], what)


@exercise("setup.interpolated_positions", weight=2)
def test_interp_squeezes(submission):
    """multiplies positions by train_len / target_len for longer targets"""
    check_interp(submission, torch.arange(10), 4, 10)


@exercise("setup.interpolated_positions", weight=2)
@pytest.mark.parametrize("target_len", [6, 3])
def test_interp_unchanged(submission, target_len):
    """leaves positions unchanged (as float32) when target_len <= train_len"""
    check_interp(submission, torch.arange(6), 6, target_len)


@exercise("setup.interpolated_positions")
@pytest.mark.robustness
def test_interp_any_shape_float64(submission):
    """keeps the shape of the positions, and returns float64 positions as float (float64 or float32)"""
    positions = torch.tensor([[0.0, 1.5, 7.0], [3.0, 2047.0, 100.25]], dtype=torch.float64)
    # The contract's "-> FloatTensor" reads as float32, its "as float" as either: both are accepted.
    check_interp(submission, positions, 2048, 8192, dtypes=(torch.float64, torch.float32))


@exercise("setup.interpolated_positions")
@pytest.mark.robustness
def test_interp_device(submission):
    """keeps the result on the positions' device (stretched float positions)"""
    same_on_second_device(submission, submission.interpolated_positions, torch.arange(5.0), 4, 8, hint=ON_DEVICE)


@exercise("setup.interpolated_positions")
@pytest.mark.robustness
def test_interp_device_unchanged(submission):
    """keeps the result on the positions' device (integer positions left as they are)"""
    same_on_second_device(submission, submission.interpolated_positions, torch.arange(5), 8, 4, hint=ON_DEVICE)


@exercise("setup.interpolated_positions")
@pytest.mark.robustness
def test_interp_inputs(submission):
    """leaves the positions unchanged"""
    submission.interpolated_positions(torch.arange(5.0), 4, 8)
    if submission.mutated_inputs():
        raise Mismatch(f"interpolated_positions changed its {', '.join(submission.mutated_inputs())} in place",
                       "in-place")


@exercise("setup.interpolated_positions")
@pytest.mark.uses("argument_checks")
def test_interp_bad_lengths(submission):
    """rejects lengths below 1 with a ValueError naming the argument"""
    p = torch.arange(3)
    expect_value_error(submission.interpolated_positions, p, 0, 8, mentions="train_len",
                       what=call_text("interpolated_positions", p, 0, 8))
    expect_value_error(submission.interpolated_positions, p, 8, 0, mentions="target_len",
                       what=call_text("interpolated_positions", p, 8, 0))
