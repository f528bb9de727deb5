"""Every mistake key the checks name is in course.grading.mistakes.MISTAKES, and every key there is
named by some check: a key the class report counts can neither be misspelt nor dead."""
import ast
from pathlib import Path

import pytest

from course.grading.mistakes import MISTAKES, mistake

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "grader_tests").glob("test_*.py"))
GRADING = [ROOT / "course" / "checking.py", *sorted((ROOT / "course" / "grading").glob("*.py"))]
# The visible checks run where course.grading is not readable: their closest_mistake candidates
# are plain (key, text) tuples.
VISIBLE = sorted((ROOT / "course" / "learner" / "visible_checks").glob("*.py"))

# Where a call carries a mistake key: (position of the argument, its keyword).
KEY_ARGUMENT = {"mistake": (0, "key"), "Mismatch": (1, "mistake"), "Hint": (1, "mistake"), "failed": (2, "mistake")}


def _strings(node) -> list[str]:
    """The string literals an expression may evaluate to (`"key"`, `"key" if hint else None`,
    `hint.mistake or "key"`), not those it passes to calls (`getattr(hint, "mistake", None)`)."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else []
    return [] if isinstance(node, ast.Call) else [s for child in ast.iter_child_nodes(node) for s in _strings(child)]


def named_keys(path: Path) -> list[tuple[str, int]]:
    """(key, line) of every literal mistake key in a file: the key arguments of mistake(...),
    Mismatch(...), Hint(...) and failed(...), and the (key, text) tuples naming closest_mistake candidates."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in KEY_ARGUMENT or path.name == "mistakes.py":
                continue
            position, keyword = KEY_ARGUMENT[name]
            args = [a.value for a in node.keywords if a.arg == keyword] or node.args[position:position + 1]
            found += [(key, node.lineno) for arg in args for key in _strings(arg)]
        elif isinstance(node, ast.Dict) and path in VISIBLE:
            found += [(t.elts[0].value, t.lineno) for key in node.keys if key is not None for t in ast.walk(key)
                      if isinstance(t, ast.Tuple) and len(t.elts) == 2 and isinstance(t.elts[0], ast.Constant)]
    return found


def test_every_key_named_is_known():
    unknown = [f"{path.relative_to(ROOT)}:{line}: {key!r}" for path in SUITES + GRADING + VISIBLE
               for key, line in named_keys(path) if key not in MISTAKES]
    assert unknown == [], "not in course/grading/mistakes.py MISTAKES:\n" + "\n".join(unknown)


def test_every_known_key_is_named_somewhere():
    used = {key for path in SUITES + GRADING + VISIBLE for key, _ in named_keys(path)}
    assert set(MISTAKES) - used == set(), "keys no check names (dead keys)"


def test_mistake_refuses_an_unknown_key():
    assert mistake("half-precision", "angles in float16") == ("half-precision", "angles in float16")
    with pytest.raises(KeyError, match="half-precission"):
        mistake("half-precission", "angles in float16")
