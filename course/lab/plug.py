"""Run the lab's trained models with the learner's own functions (notebook 09, the capstone).

The learner wrote RoPE (notebook 06), ALiBi (07) and the scaling rules (08). Here those
functions replace the lab's own inside a trained ``TinyDecoder``: if they are right, the
model behaves exactly as in the tables; if not, the damage shows in its accuracy.

    fns = plug.learner_functions()                 # one line per function: yours, or the lab's
    mine = plug.plugged(model, apply_rope=fns["apply_rope"])

Only the *definitions* of the learner's notebooks are run (functions, classes, imports and
plain constants, as course.sandbox.cells reads them), in this process: it is the
learner's own code on their own machine. A missing notebook, a missing function or one
that still raises NotImplementedError is reported in one line and replaced by the lab's
own implementation, so notebook 09 always runs to the end.
"""
from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Callable

import nbformat
import torch

from course.lab.model import alibi_slopes as lab_alibi_slopes
from course.lab.model import rope_inv_freq, rotate_half_split, scaled_rope_table
from course.sandbox.cells import definitions_only, to_python

# name: the notebook that defines it (the released notebooks' names)
SOURCES = {
    "apply_rope": "06_rope",
    "alibi_slopes": "07_alibi",
    "alibi_bias": "07_alibi",
    "yarn_inv_freq": "08_scaling",
    "llama3_inv_freq": "08_scaling",
}


# --------------------------------------------------------------------------------------
# The lab's own versions, with the learner's signatures (the fallbacks)
# --------------------------------------------------------------------------------------

def lab_apply_rope(x, positions, base=10000.0):
    """Half-split RoPE of x (..., T, d) at `positions` (T,), angles in float64."""
    angles = torch.as_tensor(positions).double()[:, None] * rope_inv_freq(x.shape[-1], base)
    return rotate_half_split(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


def lab_alibi_bias(slopes, q_pos, k_pos):
    """-slopes[h] * |q_pos[i] - k_pos[j]|, (H, T_q, T_k)."""
    distance = (q_pos.double()[:, None] - k_pos.double()[None, :]).abs()
    return -slopes[:, None, None] * distance.to(slopes.dtype)


def lab_yarn_inv_freq(d, base, factor, original_max_len):
    return scaled_rope_table(d, base, "yarn", factor, original_max_len)


def lab_llama3_inv_freq(d, base, factor, original_max_len):
    return scaled_rope_table(d, base, "llama3", factor, original_max_len)[0]


LAB_OWN = {"apply_rope": lab_apply_rope, "alibi_slopes": lab_alibi_slopes, "alibi_bias": lab_alibi_bias,
           "yarn_inv_freq": lab_yarn_inv_freq, "llama3_inv_freq": lab_llama3_inv_freq}


def _try(name: str, fn: Callable) -> None:
    """Call fn once on a small input (raises what it raises, or ValueError for a bad shape)."""
    d, T, heads = 16, 5, 4
    if name == "apply_rope":
        out = fn(torch.randn(1, 2, T, d), torch.arange(T), 10000.0)
        shape = (1, 2, T, d)
    elif name == "alibi_slopes":
        out, shape = fn(heads), (heads,)
    elif name == "alibi_bias":
        out, shape = fn(lab_alibi_slopes(heads), torch.arange(T), torch.arange(T)), (heads, T, T)
    elif name == "yarn_inv_freq":
        out, shape = fn(d, 10000.0, 2.0, 64)[0], (d // 2,)
    else:
        out, shape = fn(d, 10000.0, 2.0, 64), (d // 2,)
    if tuple(torch.as_tensor(out).shape) != shape:
        raise ValueError(f"returned shape {tuple(torch.as_tensor(out).shape)}, expected {shape}")


# --------------------------------------------------------------------------------------
# Reading the learner's notebooks
# --------------------------------------------------------------------------------------

def find_notebook(name: str, near: Path | str | None = None) -> Path | None:
    """The notebook `name` beside this one: ../NAME/NAME.ipynb (nbgrader's and the
    repository's layout) or NAME.ipynb in the same folder (``python -m course.workspace``)."""
    here = Path(near or Path.cwd()).resolve()
    for candidate in (here.parent / name / f"{name}.ipynb", here / f"{name}.ipynb", here / name / f"{name}.ipynb"):
        if candidate.is_file():
            return candidate
    return None


def notebook_definitions(path: Path) -> tuple[dict, list[str]]:
    """The namespace left by the definitions of every code cell of a notebook, in order, and what
    kept a cell from defining anything ("cell 5: SyntaxError: ...", numbered as the grader does).

    A cell that does not parse, or whose definitions fail (an import that is not installed, say),
    is skipped: the other cells still define what they define.
    """
    namespace, problems = {"__name__": f"learner_{Path(path).stem}"}, []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells, start=1):
        if cell.cell_type != "code":
            continue
        source = to_python(cell.source)
        try:
            compile(source, f"{Path(path).name}, cell {index}", "exec")
        except (SyntaxError, ValueError) as err:
            where = f" (line {err.lineno})" if getattr(err, "lineno", None) else ""
            problems.append(f"cell {index}: {type(err).__name__}: {getattr(err, 'msg', err)}{where}")
            continue
        code, _ = definitions_only(source)
        if not code:
            continue
        try:
            exec(compile(code, f"{Path(path).name}", "exec"), namespace)  # noqa: S102 - the learner's own code
        except Exception as err:  # noqa: BLE001 - keep what the other cells define
            problems.append(f"cell {index}: {type(err).__name__}: {str(err)[:80]}")
    return namespace, problems


def learner_functions(near: Path | str | None = None, names=tuple(SOURCES), report: Callable = print) -> dict:
    """{name: function} for `names`: the learner's where it works, else the lab's own.

    Reports one line per function saying which one is used and why.
    """
    loaded, chosen = {}, {}
    for name in names:
        notebook = SOURCES[name]
        if notebook not in loaded:
            path = find_notebook(notebook, near)
            loaded[notebook] = (path, *(notebook_definitions(path) if path else (None, [])))
        path, namespace, problems = loaded[notebook]
        fn = None if namespace is None else namespace.get(name)
        if path is None:
            why = f"{notebook}.ipynb not found next to this notebook"
        elif not callable(fn):
            why = f"{path.name} does not define it" + (f"; cells skipped: {'; '.join(problems)}"
                                                       if problems else "")
        else:
            try:
                _try(name, fn)
            except NotImplementedError as err:
                raiser = traceback.extract_tb(err.__traceback__)[-1].name
                why = (f"yours in {path.name} is not implemented yet: it raises NotImplementedError" if raiser == name
                       else f"yours in {path.name} calls {raiser}, which is not implemented yet")
            except Exception as err:  # noqa: BLE001 - any failure is reported the same way
                why = f"yours in {path.name} raised {type(err).__name__}: {str(err)[:80]}"
            else:
                chosen[name] = fn
                report(f"{name:>16}: yours, from {path}")
                continue
        chosen[name] = LAB_OWN[name]
        report(f"{name:>16}: the lab's own ({why})")
    return chosen


# --------------------------------------------------------------------------------------
# Plugging functions into a model
# --------------------------------------------------------------------------------------

def yarn_rule(yarn_inv_freq: Callable) -> Callable:
    """A scaling rule (head_dim, base, factor, train_len) -> (inv_freq, attention factor)."""
    return lambda d, base, factor, train_len: yarn_inv_freq(d, base, factor, train_len)


def llama3_rule(llama3_inv_freq: Callable) -> Callable:
    return lambda d, base, factor, train_len: (llama3_inv_freq(d, base, factor, train_len), 1.0)


def signals_from(apply_rope=None, alibi_slopes=None, alibi_bias=None, scaling=None) -> Callable:
    """A ``TinyDecoder.signals`` function built from the given functions (the lab's own
    for any left out). A RoPE model uses `apply_rope` unscaled, or, with `scaling`, the
    rule's frequencies at s = T / train_len (or ``model.rope_factor``)."""
    apply_rope = apply_rope or lab_apply_rope
    alibi_slopes, alibi_bias = alibi_slopes or lab_alibi_slopes, alibi_bias or lab_alibi_bias

    def signals(model, T, device):
        cfg = model.cfg
        pos = torch.arange(T, device=device)
        if cfg.scheme == "rope" and scaling is None:
            return (lambda x: apply_rope(x, pos, cfg.rope_base)), None
        if cfg.scheme == "rope":
            factor = model.rope_factor or max(1.0, T / cfg.train_len)
            inv_freq, mscale = scaling(cfg.head_dim, cfg.rope_base, factor, cfg.train_len)
            angles = pos.double()[:, None] * torch.as_tensor(inv_freq, dtype=torch.float64)
            return (mscale * angles.cos().float(), mscale * angles.sin().float()), None
        if cfg.scheme == "alibi":
            slopes = torch.as_tensor(alibi_slopes(cfg.n_heads), dtype=torch.float32, device=device)
            return None, alibi_bias(slopes, pos, pos).float()  # the causal mask hides j > i
        raise ValueError(f"nothing to plug into a {cfg.scheme!r} model (rope or alibi only)")

    return signals


def plugged(model, **functions):
    """A copy of `model` whose position signals come from `functions` (see ``signals_from``)."""
    other = copy.deepcopy(model)
    other.rope_scaling = None
    other.signals = signals_from(**functions)
    return other.eval()


@torch.no_grad()
def max_logit_gap(a, b, tokens: torch.Tensor) -> float:
    """Largest |logit difference| between two models on the same tokens."""
    return (a(tokens) - b(tokens)).abs().max().item()


def agreement(a, b, tokens: torch.Tensor) -> float:
    """Fraction of positions where two models predict the same next token."""
    with torch.no_grad():
        return (a(tokens).argmax(-1) == b(tokens).argmax(-1)).float().mean().item()


__all__ = ["LAB_OWN", "SOURCES", "agreement", "find_notebook", "lab_apply_rope", "learner_functions", "llama3_rule",
           "max_logit_gap", "notebook_definitions", "plugged", "signals_from", "yarn_rule"]
