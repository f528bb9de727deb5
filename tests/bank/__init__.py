"""Wrong implementations each hidden suite must reject (see docs/DEVELOPING.md)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    id: str          # short slug, unique within the section
    exercise: str    # the exercise that must lose points, e.g. "rope.apply_rope"
    code: str        # definitions appended to the solution module (they replace the right ones)
    mistake: str = ""  # if set, text the feedback must contain (the named diagnosis)
    cascades: tuple = ()  # other exercises allowed to lose points: they call the buggy function
    key: str = ""  # if set, the key (course.grading.mistakes) the report must list among the exercise's mistakes


def variant(section: str, name: str, *replacements: tuple[str, str]) -> str:
    """The reference definition of `name` from solutions/<section>.py with each (old, new) line
    replaced: one realistic slip in otherwise right code."""
    import ast
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "solutions" / f"{section}.py").read_text()
    node = next(n for n in ast.parse(text).body if getattr(n, "name", None) == name)
    source = "\n".join(text.splitlines()[node.lineno - 1: node.end_lineno])
    for old, new in replacements:
        if source.count(old) != 1:
            raise ValueError(f"{old!r} is not exactly once in solutions/{section}.py:{name}")
        source = source.replace(old, new)
    return source + "\n"
