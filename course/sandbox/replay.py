"""What of a cell that hung or crashed is run again when the learner's process is rebuilt.

A notebook cell often defines a function and then demonstrates it; if the demonstration
hangs or kills the process, the definitions must not be lost with it. Replayed are the
cell's top-level definitions alone: functions and classes (with their decorators), imports,
and assignments of plain values, none of which runs the learner's computations.
"""
from __future__ import annotations

import ast

_PLAIN = (ast.Constant, ast.Name, ast.Attribute)


def _plain_value(node: ast.AST) -> bool:
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(map(_plain_value, node.elts))
    if isinstance(node, ast.UnaryOp):
        return _plain_value(node.operand)
    return isinstance(node, _PLAIN)


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.Assign):
        return _plain_value(node.value)
    return isinstance(node, ast.AnnAssign) and node.value is not None and _plain_value(node.value)


def definitions_only(code: str) -> tuple[str, list[str]]:
    """(the cell's definitions as source, the names they define); ("", []) if none or unparsable."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "", []
    kept = [node for node in tree.body if _is_definition(node)]
    names = []
    for node in kept:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        else:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    if not kept:
        return "", []
    return ast.unparse(ast.Module(body=kept, type_ignores=[])) + "\n", names
