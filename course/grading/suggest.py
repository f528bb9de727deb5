"""``python -m course.grade FILE --suggest-adapter``: a starting adapter for code written to other
signatures, from the functions and classes the file defines (read from its text, never run).

It lists them with their signatures, imports the helpers of course.adapting, and leaves the
course's functions of the sections those names suggest for the user to finish (see README,
"Checking RoPE/ALiBi code from elsewhere").
"""
from __future__ import annotations

import ast
import json
import re

from course.grading.report import signature_text
from course.grading.submission import read_submission

_KINDS = {"posonlyargs": "positional_only", "args": "positional_or_keyword", "kwonlyargs": "keyword_only"}
_SECTIONS = {"rope": re.compile(r"rot|rope|freq|cos|sin", re.I), "alibi": re.compile(r"alibi|slope|bias", re.I)}


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef, skip: int = 0) -> list[dict]:
    a = function.args
    positional = a.posonlyargs + a.args
    defaults = [False] * (len(positional) - len(a.defaults)) + [True] * len(a.defaults)
    listed = [{"name": p.arg, "kind": _KINDS["posonlyargs" if p in a.posonlyargs else "args"], "default": d}
              for p, d in zip(positional, defaults)]
    if a.vararg:
        listed.append({"name": a.vararg.arg, "kind": "var_positional", "default": False})
    listed += [{"name": p.arg, "kind": "keyword_only", "default": d is not None}
               for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        listed.append({"name": a.kwarg.arg, "kind": "var_keyword", "default": False})
    return listed[skip:]


def found_signatures(path) -> list[dict]:
    """The top-level functions and classes of the file's code, as report.signature_text reads them."""
    found = {}
    for _, code in read_submission(path).cells:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, RecursionError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[node.name] = {"name": node.name, "kind": "function", "parameters": _parameters(node)}
            elif isinstance(node, ast.ClassDef):
                methods = {m.name: m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
                init, forward = methods.get("__init__"), methods.get("forward")
                found[node.name] = {"name": node.name, "kind": "class",
                                    "parameters": _parameters(init, 1) if init else [],
                                    "forward": _parameters(forward, 1) if forward else None}
    return list(found.values())


_ROPE = '''

def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    def turn(y):  # rotate every feature of y (..., T, D) with your code; y as (B, T, H, D): to_layout(y, "bthd")
        rows, length = table_rows(y, positions, "your table")  # if your code reads a table by position
        raise NotImplementedError("call your code here")
    # native_interleaved: whether your code pairs features (2k, 2k+1) rather than (k, k + D/2)
    return rope(x, turn, native_interleaved=False, interleaved=interleaved, rotary_dim=rotary_dim)
'''

_ALIBI = '''

def alibi_slopes(n_heads):
    raise NotImplementedError("call your code here; return a float32 tensor (n_heads,)")


def alibi_attention(q, k, v, causal=True):
    bias = NotImplemented  # your bias, broadcastable to (..., H, T_q, T_k)
    return attention_with_bias(q, k, v, bias, causal)
'''


def suggested_adapter(path) -> str:
    """The text of a starting adapter for the file at `path`."""
    found = found_signatures(path)
    sections = [s for s, pattern in _SECTIONS.items() if any(pattern.search(f["name"]) for f in found)]
    sections = sections or list(_SECTIONS)
    path = json.dumps(str(path))[1:-1]  # a file name is the learner's: escaped, it cannot end the docstring
    listed = "\n".join(f"    {signature_text(f)}" for f in found) or "    (no top-level function or class)"
    return (f'"""A starting adapter for {path}: define the course\'s names from your code,\n'
            f"then grade with python -m course.grade {path} --adapter THIS_FILE\n"
            '(README: "Checking RoPE/ALiBi code from elsewhere").\n\n'
            f'Your code defines:\n{listed}\n"""\n'
            "from course.adapting import (attention_with_bias, from_layout, rope, table_rows,  # noqa: F401\n"
            "                             to_layout)\n\n"
            "# features (interleaved, half_split, rotary_dim, fractional_positions, cache_growth, argument_checks,\n"
            "# bidirectional) or exercise ids (rope.rope_matrix, ...) your code cannot express: {key: why}\n"
            "NOT_APPLICABLE = {}\n"
            + "".join({"rope": _ROPE, "alibi": _ALIBI}[s] for s in sections))
