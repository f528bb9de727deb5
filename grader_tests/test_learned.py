"""Hidden suite, section 4 (learned absolute positions).

References are independent of solutions/: the module is judged against its own `weight`
(read back from the learner's object) with explicit indexing, gradients against counts of
how often each row is used, and resizing against np.interp along each feature column at
old coordinates j * (old_len - 1) / (new_len - 1).
"""
import numpy as np
import pytest
import torch

from course.checking import seeded_randn as rand
from course.checking import (Hint, Mismatch, call_text, closest_mistake, expect_close, expect_dtype, expect_shape,
                             expect_value_error, failed, halted)
from course.grading.device_check import expect_same_on_second_device as same_on_second_device
from course.grading.mistakes import mistake

exercise = pytest.mark.exercise
F32 = dict(atol=1e-6, rtol=1e-5)
MODULE = "learned.LearnedPositionalEmbedding"
RESIZE = "learned.resize_position_table"



def build(submission, max_len, d):
    return submission.LearnedPositionalEmbedding(max_len, d)


def weight_of(module, max_len, d, label):
    """The learner's table, as a float64 copy."""
    weight = module.weight
    expect_shape(weight, (max_len, d), f"{label}.weight")
    return weight.double()


# ---------------------------------------------------------------- LearnedPositionalEmbedding
@exercise(MODULE, weight=2)
def test_module_weight_is_parameter(submission):
    """is an nn.Module whose weight is a (max_len, d) nn.Parameter"""
    module = build(submission, 10, 4)
    if "torch.nn.modules.module.Module" not in submission.type_names(module):
        raise AssertionError("LearnedPositionalEmbedding(10, 4) is not a torch.nn.Module: subclass nn.Module")
    kinds = submission.type_names(module, "weight")
    if "torch.nn.parameter.Parameter" not in kinds:
        raise Mismatch(f"LearnedPositionalEmbedding(10, 4).weight is a {kinds[0].rsplit('.', 1)[-1]}, expected an "
                       "nn.Parameter: a plain tensor attribute is not trained, saved or moved with the module",
                       "not-parameter")
    weight_of(module, 10, 4, "LearnedPositionalEmbedding(10, 4)")


@exercise(MODULE, weight=2)
def test_module_initialisation(submission):
    """starts from a normal distribution with mean 0 and std 0.02"""
    module = build(submission, 512, 64)
    w = weight_of(module, 512, 64, "LearnedPositionalEmbedding(512, 64)")
    # 32768 draws: the sample std of N(0, 0.02^2) is within 0.4% of 0.02 with overwhelming odds,
    # and 68.3% of the draws lie within one standard deviation (57.7% for a uniform distribution)
    std, mean = w.std().item(), w.mean().item()
    inside = (w.abs() < 0.02).double().mean().item()
    if not 0.0192 < std < 0.0208 or abs(mean) > 0.0008:
        hint = " (nn.Embedding's default initialisation has std 1)" if 0.9 < std < 1.1 else ""
        raise Mismatch(f"LearnedPositionalEmbedding(512, 64).weight has mean {mean:.4g} and std {std:.4g}; expected "
                       f"a normal initialisation with mean 0 and std 0.02{hint}: nn.init.normal_(weight, std=0.02)",
                       "init")
    if not 0.66 < inside < 0.71:
        raise Mismatch(f"{inside:.1%} of LearnedPositionalEmbedding(512, 64).weight lies within one std of 0, "
                       "expected about 68% for a normal distribution (is it uniform?)", "init")


@exercise(MODULE, weight=2)
def test_module_default_ids(submission):
    """adds row t to the token at position t by default"""
    module = build(submission, 6, 3)
    label = "LearnedPositionalEmbedding(6, 3)"
    w = weight_of(module, 6, 3, label)
    x = rand(1, 2, 3)
    what = call_text(label, x)
    got = module(x)
    expect_close(got, x.double() + w[:2], what, **F32)


@exercise(MODULE)
def test_module_last_row_usable(submission):
    """accepts id max_len - 1 and a sequence of exactly max_len tokens"""
    module = build(submission, 4, 2)
    label = "LearnedPositionalEmbedding(4, 2)"
    w = weight_of(module, 4, 2, label)
    x, ids = rand(1, 2, 2, seed=3), torch.tensor([0, 3])
    full = rand(1, 4, 2, seed=4)
    hint = Hint("Valid ids are 0 .. max_len - 1, the last row included.", "last-row")
    for args, expected in (((x, ids), x.double() + w[ids]), ((full,), full.double() + w)):
        what = call_text(label, *args)
        try:
            got = module(*args)
        except ValueError as err:
            raise failed(f"{what} raised ValueError({err}).", hint) from None
        expect_close(got, expected, what, **F32, hint=hint)


@exercise(MODULE, weight=2)
@pytest.mark.parametrize("ids", [torch.tensor([4, 0, 4]), torch.tensor([[5, 1, 2], [0, 0, 3]])],
                         ids=["shared", "per-sequence"])
def test_module_given_ids(submission, ids):
    """adds row position_ids[..., t] for (T,) and (B, T) ids"""
    module = build(submission, 6, 3)
    label = "LearnedPositionalEmbedding(6, 3)"
    w = weight_of(module, 6, 3, label)
    x = rand(2, 3, 3, seed=1)
    what = call_text(label, x, ids)
    got = module(x, ids)
    hint = closest_mistake(got, {mistake("positions-ignored", "ignoring position_ids and adding rows 0..T-1"):
                                     x.double() + w[:3]})
    expect_close(got, x.double() + w[ids], what, **F32, hint=hint)


@exercise(MODULE)
@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3, 4)], ids=["no-batch", "heads"])
def test_module_any_leading_dims(submission, shape):
    """works for x of shape (..., T, d)"""
    module = build(submission, 5, 4)
    label = "LearnedPositionalEmbedding(5, 4)"
    w = weight_of(module, 5, 4, label)
    x = rand(*shape, seed=2)
    got = module(x)
    expect_close(got, x.double() + w[:3], call_text(label, x), **F32)


def _expect_range_error(submission, module, label, x, ids, weight):
    args = (x,) if ids is None else (x, ids)
    what = call_text(label, *args)
    try:
        got = module(*args)
    except ValueError:
        expect_value_error(module, *args, mentions="max_len", what=what)
        return
    except Exception as err:  # noqa: BLE001 - report the type the learner raised
        if halted(err):  # it hung or crashed: no answer, no mistake to name
            raise
        raise Mismatch(f"{what} raised {type(err).__name__}({err}); expected a ValueError naming 'max_len'",
                       "no-value-error") from None
    max_len = weight.shape[0]
    used = torch.arange(x.shape[-2]) if ids is None else ids
    diagnosis = closest_mistake(got, {
        mistake("ids-clamped", "clamping the ids to the last row (every long position silently reuses row max_len - "
                "1)"): x.double() + weight[used.clamp(0, max_len - 1)],
        mistake("ids-clamped", "negative ids wrapping around to the end of the table (id -1 silently reads the last "
                "row)"): x.double() + weight[used % max_len],
    }, atol=1e-6)
    raise Mismatch(f"{what} returned normally; expected a ValueError naming 'max_len'. {diagnosis}".rstrip(),
                   diagnosis.mistake or "no-value-error")


@exercise(MODULE, weight=2)
@pytest.mark.parametrize("ids", [torch.tensor([0, 5, 1]), torch.tensor([9, 1, 2]), torch.tensor([-1, 0, 1])],
                         ids=["max_len", "beyond", "negative"])
@pytest.mark.uses("argument_checks")
def test_module_out_of_range(submission, ids):
    """rejects an id outside [0, max_len) with a ValueError naming max_len"""
    module = build(submission, 5, 2)
    label = "LearnedPositionalEmbedding(5, 2)"
    w = weight_of(module, 5, 2, label)
    _expect_range_error(submission, module, label, rand(1, 3, 2, seed=5), ids, w)


@exercise(MODULE)
@pytest.mark.uses("argument_checks")
def test_module_too_long(submission):
    """rejects a default length T > max_len with a ValueError naming max_len"""
    module = build(submission, 3, 2)
    label = "LearnedPositionalEmbedding(3, 2)"
    w = weight_of(module, 3, 2, label)
    _expect_range_error(submission, module, label, rand(1, 4, 2, seed=6), None, w)


@exercise(MODULE, weight=2)
def test_module_gradients(submission):
    """sends gradients to exactly the rows used, summed over repeats"""
    module = build(submission, 6, 2)
    x, ids = rand(2, 3, 2, seed=7), torch.tensor([[1, 4, 4], [1, 0, 4]])
    upstream = rand(2, 3, 2, seed=8)
    what = call_text("LearnedPositionalEmbedding(6, 2)", x, ids) + " backpropagating an upstream gradient"
    advice = ("is weight an nn.Parameter and is the lookup kept in the autograd graph (no .detach(), .data or "
              "torch.no_grad())?")
    try:
        grads = submission.grads(module, x, ids, upstream=upstream)
    except RuntimeError as err:
        if "grad" not in str(err):
            raise
        raise Mismatch(f"{what}: no gradient reached the weight, backward failed with '{err}'; {advice}",
                       "no-gradient") from None
    if grads.get("weight") is None:
        raise Mismatch(f"{what}: no gradient reached module.weight (parameters with a gradient: "
                       f"{sorted(n for n, g in grads.items() if g is not None)}); {advice}", "no-gradient")
    expected = torch.zeros(6, 2, dtype=torch.float64)
    expected.index_add_(0, ids.flatten(), upstream.double().reshape(-1, 2))
    expect_close(grads["weight"], expected, f"{what}: weight.grad", **F32,
                 hint="Row r should collect the upstream gradient of every token with id r; unused rows get zero.")


@exercise(MODULE)
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2), (torch.float64, 1e-6)])
def test_module_dtypes(submission, dtype, atol):
    """returns x's dtype"""
    module = build(submission, 4, 8)
    label = "LearnedPositionalEmbedding(4, 8)"
    w = weight_of(module, 4, 8, label)
    x = rand(2, 3, 8, seed=9, dtype=dtype)
    what = call_text(label, x)
    got = module(x)
    expect_dtype(got, dtype, what)
    expect_close(got, x.double() + w[:3], what, atol=atol, rtol=atol)


@exercise(MODULE)
@pytest.mark.robustness
def test_module_device(submission):
    """keeps the output on the input's device"""
    same_on_second_device(submission, build(submission, 8, 4), rand(2, 3, 4, seed=80),
                          hint="Create the default ids on the weight's (or x's) device.")


@exercise(MODULE)
@pytest.mark.robustness
def test_module_device_given_ids(submission):
    """keeps the output on the input's device with position_ids given"""
    same_on_second_device(submission, build(submission, 8, 4), rand(2, 3, 4, seed=81), torch.tensor([5, 0, 7]),
                          hint="Index the table with ids on its own device.")


@exercise(MODULE)
@pytest.mark.robustness
def test_module_not_in_place(submission):
    """leaves x and position_ids unchanged"""
    module = build(submission, 5, 2)
    module(rand(1, 3, 2, seed=10), torch.tensor([2, 0, 1]))
    if submission.mutated_inputs():
        raise Mismatch(f"LearnedPositionalEmbedding(5, 2)(x, position_ids) changed its "
                       f"{', '.join(submission.mutated_inputs())} in place; return x + rows instead of x += rows",
                       "in-place")


# ---------------------------------------------------------------- resize_position_table
def ref_resize(table, new_len):
    t = table.double().numpy()
    old_len = t.shape[0]
    coords = np.arange(new_len) * (old_len - 1) / (new_len - 1)
    return torch.from_numpy(np.stack([np.interp(coords, np.arange(old_len), t[:, j]) for j in range(t.shape[1])], -1))


def resize_mistakes(table, new_len):
    t = table.double()
    old_len = t.shape[0]
    j = np.arange(new_len)
    nearest = np.clip(np.floor(j * (old_len - 1) / (new_len - 1) + 0.5), 0, old_len - 1).astype(np.int64)
    half_pixel = np.clip((j + 0.5) * old_len / new_len - 0.5, 0, old_len - 1)
    stretched = np.clip(j * old_len / new_len, 0, old_len - 1)

    def at(coords):
        return torch.from_numpy(np.stack([np.interp(coords, np.arange(old_len), t[:, c].numpy())
                                          for c in range(t.shape[1])], -1))

    return {
        mistake("resize-nearest", "nearest-neighbour resizing (rows copied, not interpolated)"):
            t[torch.from_numpy(nearest)],
        mistake("resize-corners", "align_corners=False coordinates ((j + 0.5) * old_len / new_len - 0.5): the end "
                "rows must stay at the ends, old row r at r * (new_len - 1) / (old_len - 1)"): at(half_pixel),
        mistake("resize-corners", "scaling by old_len / new_len instead of (old_len - 1) / (new_len - 1): the last "
                "old row never reaches the last new position"): at(stretched),
    }


@exercise(RESIZE, weight=2)
def test_resize_small(submission):
    """puts the average of two rows halfway between them"""
    table = torch.tensor([[0.0, 4.0], [2.0, -4.0]])
    what = call_text("resize_position_table", table, 3)
    got = submission.resize_position_table(table, 3)
    expect_close(got, ref_resize(table, 3), what, **F32, hint=closest_mistake(got, resize_mistakes(table, 3)))


@exercise(RESIZE, weight=2)
@pytest.mark.parametrize("old_len,new_len", [(5, 9), (4, 11), (7, 4)])
def test_resize_values(submission, old_len, new_len):
    """interpolates linearly with both end rows kept, growing or shrinking"""
    table = rand(old_len, 3, seed=11)
    what = call_text("resize_position_table", table, new_len)
    got = submission.resize_position_table(table, new_len)
    expect_close(got, ref_resize(table, new_len), what, atol=1e-5, rtol=1e-5,
                 hint=closest_mistake(got, resize_mistakes(table, new_len)))


@exercise(RESIZE)
def test_resize_same_length(submission):
    """returns an equal table when the length does not change"""
    table = rand(4, 2, seed=12)
    expect_close(submission.resize_position_table(table, 4), table, "resize_position_table(table, 4) for a 4-row table",
                 **F32)


@exercise(RESIZE)
@pytest.mark.robustness
@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_resize_dtypes(submission, dtype, atol):
    """keeps the table's dtype"""
    table = rand(3, 4, seed=13, dtype=dtype)
    what = call_text("resize_position_table", table, 6)
    got = submission.resize_position_table(table, 6)
    expect_dtype(got, dtype, what)
    expect_close(got, ref_resize(table, 6), what, atol=atol, rtol=atol)


@exercise(RESIZE)
@pytest.mark.robustness
def test_resize_device(submission):
    """keeps the output on the table's device"""
    same_on_second_device(submission, submission.resize_position_table, rand(5, 3, seed=82), 8,
                          hint="Create the coordinates on table.device.")


@exercise(RESIZE)
@pytest.mark.robustness
def test_resize_not_in_place(submission):
    """leaves the table unchanged"""
    submission.resize_position_table(rand(5, 2, seed=14), 9)
    if submission.mutated_inputs():
        raise Mismatch(f"resize_position_table changed its {', '.join(submission.mutated_inputs())} in place",
                       "in-place")


@exercise(RESIZE)
@pytest.mark.parametrize("new_len", [1, 0])
@pytest.mark.uses("argument_checks")
def test_resize_bad_new_len(submission, new_len):
    """rejects new_len < 2 with a ValueError naming new_len"""
    table = rand(4, 2)
    expect_value_error(submission.resize_position_table, table, new_len, mentions="new_len",
                       what=call_text("resize_position_table", table, new_len))


@exercise(RESIZE)
@pytest.mark.uses("argument_checks")
def test_resize_one_row(submission):
    """rejects a table of one row with a ValueError naming table"""
    table = rand(1, 3)
    expect_value_error(submission.resize_position_table, table, 5, mentions="table",
                       what=call_text("resize_position_table", table, 5))
