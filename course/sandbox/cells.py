"""What a cell's source means: IPython syntax read as Python, the names it defines, and its
definitions alone.

A notebook cell often defines a function and then demonstrates it; if the demonstration
hangs or kills the process, the definitions must not be lost with it. When the learner's
process is rebuilt, such a cell's top-level definitions alone are replayed: functions and
classes (with their decorators), imports, and assignments of plain values, none of which
runs the learner's computations.
"""
from __future__ import annotations

import ast
import re
import symtable
from functools import lru_cache, wraps
from types import SimpleNamespace

from IPython.core.inputtransformer2 import TransformerManager

_TRANSFORMER = TransformerManager()
# Cell magics that run their body as Python in the user's namespace: their definitions count.
RUN_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}

# What Python's parser and compiler raise for code they cannot read: besides syntax errors and null
# bytes, code nested too deeply (`1+1+...` a million times, `-(-(-...))`): RecursionError, MemoryError.
UNREADABLE = (SyntaxError, ValueError, RecursionError, MemoryError)


def cached(function):
    """`function` of a cell's source, remembered for the last 512 sources of up to 64 kB: a
    grading reads each cell several times, and a class's notebooks share most of their cells.
    Only small, immutable results are kept (strings, frozensets), never syntax trees (a cell of
    literals makes one a hundred times its size)."""
    remembered = lru_cache(maxsize=512)(function)

    @wraps(function)
    def read(code: str):
        return remembered(code) if len(code) <= 65536 else function(code)

    return read


@cached
def to_python(source: str) -> str:
    """IPython syntax becomes Python: a cell starting with a cell magic that runs its body
    (``%%time``, ``%%capture``, ...) becomes that body (line numbers kept); other magics and
    ``!shell`` lines become get_ipython() calls, which the sandbox ignores (see
    course.sandbox.child). Any line ending (CRLF, CR) is read as Python reads it."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    magic = re.match(r"%%(\w+)", lines[first])
    if magic and magic.group(1) in RUN_CELL_MAGICS:
        return "\n" * (first + 1) + to_python("\n".join(lines[first + 1:]))
    try:
        # IPython's own steps (transform_cell); its token transforms (magics, !shell, help?) never
        # apply to code that already parses as Python, and are most of its cost: skip them then.
        lines = (source if source.endswith("\n") else source + "\n").splitlines(keepends=True)
        for transform in _TRANSFORMER.cleanup_transforms + _TRANSFORMER.line_transforms:
            lines = transform(lines)
        cleaned = "".join(lines)
        try:
            ast.parse(cleaned)
            return cleaned
        except SyntaxError:  # perhaps IPython's syntax
            pass
        except UNREADABLE:  # too deep (or null bytes): no IPython transform makes it readable
            return cleaned
        return _TRANSFORMER.transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it; the cell will report its own SyntaxError
        return source


def _tree(code: str) -> ast.Module | None:
    """The code's syntax tree, or None if it cannot be read (see UNREADABLE)."""
    try:
        return ast.parse(code)
    except UNREADABLE:
        return None


_PLAIN = (ast.Constant, ast.Name, ast.Attribute)


def _plain_value(node: ast.AST) -> bool:
    """Constants, names and attributes, negated or in tuples and lists (walked without recursion:
    the nesting is the learner's)."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Tuple, ast.List)):
            stack += node.elts
        elif isinstance(node, ast.UnaryOp):
            stack.append(node.operand)
        elif not isinstance(node, _PLAIN):
            return False
    return True


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.Assign):
        return _plain_value(node.value)
    return isinstance(node, ast.AnnAssign) and node.value is not None and _plain_value(node.value)


def _names(node: ast.stmt) -> list[str]:
    """The names a top-level statement defines (def, class, import, assignment to a name)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    return []


def _statements(code: str) -> list[ast.stmt]:
    tree = _tree(code)
    return tree.body if tree is not None else []


@cached
def top_level_names(code: str) -> frozenset[str]:
    """Every name the code defines at top level (nothing if it does not parse)."""
    return frozenset(name for node in _statements(code) for name in _names(node))


def _first(node: ast.stmt) -> ast.AST:
    """Where a top-level statement's text starts: its first decorator's expression, or itself."""
    return (getattr(node, "decorator_list", None) or [node])[0]


def _text(code: str, node: ast.stmt) -> str:
    """A top-level statement's own text, decorators included."""
    first = _first(node)
    span = SimpleNamespace(lineno=first.lineno, col_offset=first.col_offset,
                           end_lineno=node.end_lineno, end_col_offset=node.end_col_offset)
    return ("@" if first is not node else "") + ast.get_source_segment(code, span)


def definitions_only(code: str) -> tuple[str, list[str]]:
    """(the cell's definitions as source, the names they define); ("", []) if none or unreadable.
    Their own text, on their own lines where it can (tracebacks keep their line numbers): never
    regenerated from the syntax tree, whose depth is the learner's."""
    kept = [node for node in _statements(code) if _is_definition(node)]
    if not kept:
        return "", []
    text, line = "", 1
    for node in kept:
        start = _first(node).lineno
        if text and start == line:  # after a `;`: both are simple statements
            text += "; "
        elif text:
            text, line = text + "\n", line + 1
        text += "\n" * max(start - line, 0)
        segment = _text(code, node)
        text, line = text + segment, max(line, start) + segment.count("\n")
    return text + "\n", [n for node in kept for n in _names(node)]


# Code that reaches the namespace by name at run time: which names it reads or binds is unknown.
_DYNAMIC = {"exec", "eval", "globals", "vars", "locals", "__import__", "get_ipython"}


def _scopes(code: str):
    """The cell's symbol tables, module first (Python's own scope analysis), or None if it does not
    compile or reaches names dynamically (exec, eval, globals(), a star import, an IPython magic)."""
    try:
        module = symtable.symtable(code, "<cell>", "exec")
    except UNREADABLE:
        return None
    tables, stack = [], [module]
    while stack:
        table = stack.pop()
        tables.append(table)
        stack += table.get_children()
    if any(sym.get_name() in _DYNAMIC and sym.is_global() for t in tables for sym in t.get_symbols()) \
            or re.search(r"\bimport\s+\*", code):
        return None
    return tables


@cached
def names_used(code: str) -> frozenset[str] | None:
    """The global names the code reads or writes: at top level, and in function and class bodies
    (their own locals and parameters excluded); None if that cannot be told (see _scopes)."""
    tables, tree = _scopes(code), _tree(code)
    if tables is None or tree is None:
        return None
    used = {sym.get_name() for sym in tables[0].get_symbols() if sym.is_referenced()}
    for node in ast.walk(tree):  # `x += 1` and `del x` read x; the symbol table only says "assigned"
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            used.add(node.target.id)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Del):
            used.add(node.id)
    return frozenset(used | {sym.get_name() for t in tables[1:] for sym in t.get_symbols() if sym.is_global()})


@cached
def names_bound(code: str) -> frozenset[str] | None:
    """The names running the code at top level may bind or delete (definitions, imports, assignments,
    names a function declares global); None if that cannot be told (see _scopes)."""
    tables = _scopes(code)
    if tables is None:
        return None
    bound = {sym.get_name() for sym in tables[0].get_symbols()
             if sym.is_assigned() or sym.is_imported() or sym.is_namespace()}
    return frozenset(bound | {sym.get_name() for t in tables[1:] for sym in t.get_symbols()
                              if sym.is_declared_global()})


def skippable_demonstrations(cells: list[tuple[str, bool]], used_by_grading: set[str]) -> set[int]:
    """Indexes of the cells among `cells` ((source, is a demonstration)) that need not run for
    grading: demonstrations binding no name that grading (`used_by_grading`) or any cell that
    runs mentions, transitively. Nothing is skipped if a cell that runs reaches names dynamically;
    a demonstration whose names cannot be told runs."""
    bound = {i: names_bound(code) for i, (code, demo) in enumerate(cells) if demo}
    skip = {i for i, names in bound.items() if names is not None}
    used = set(used_by_grading)
    runs = [i for i in range(len(cells)) if i not in skip]
    while runs:
        for i in runs:
            names = names_used(cells[i][0])
            if names is None:
                return set()
            used |= names
        runs = [i for i in skip if bound[i] & used]
        skip -= set(runs)
    return skip
