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
