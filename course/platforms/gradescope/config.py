"""What one Gradescope assignment grades and how (gradescope_config.json in the zip), and how
its tests are named."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from course.exercises import EXERCISES, NOTEBOOKS, SECTIONS, section_exercises
from course.sandbox.limits import Limits


CONFIG_NAME = "gradescope_config.json"
ROOT_ENV = "AUTOGRADER_ROOT"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
TIME_LIMIT = 480.0      # seconds for a whole run: below Gradescope's default timeout of 10 minutes


@dataclass
class Config:
    """What one Gradescope assignment grades and how (gradescope_config.json in the zip)."""
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    hidden_visibility: str = "after_published"
    visible_checks: bool = True
    time_limit: float = TIME_LIMIT
    limits: dict = field(default_factory=lambda: {**asdict(Limits()), "conventions": False})
    course_version: str = ""

    def __post_init__(self):
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown or not self.sections:
            raise ValueError(f"unknown section(s) {', '.join(unknown) or '(none given)'}; "
                             f"sections are {', '.join(SECTIONS)}")
        self.sections = [s for s in SECTIONS if s in self.sections]
        if self.hidden_visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {self.hidden_visibility!r}")
        self.time_limit = float(self.time_limit)
        if not self.time_limit > 0:
            raise ValueError(f"the time limit must be positive, not {self.time_limit}")
        self.limits = {**asdict(Limits()), "conventions": False, **self.limits}  # a class: off unless asked

    @property
    def exercise_ids(self) -> list[str]:
        return [e.id for s in self.sections for e in section_exercises(s)]

    @property
    def points(self) -> float:
        return float(sum(EXERCISES[i].points for i in self.exercise_ids))

    def grading_limits(self) -> Limits:
        known = {f.name for f in fields(Limits)}
        return Limits(**{k: v for k, v in self.limits.items() if k in known})

    @property
    def grace(self) -> int:
        """Seconds run_autograder waits past the time limit before it stops the grader itself."""
        return int(min(30, max(5, self.time_limit // 10)))

    @classmethod
    def load(cls, source: Path) -> "Config":
        data = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def test_name(exercise_id: str) -> str:
    """``rope.apply_rope (Rotating queries and keys)``: the id and the heading of the notebook
    section that teaches it (without the heading's number, which would clash with the test's)."""
    return f"{exercise_id} ({re.sub(r'^[0-9.]+[ ]+', '', EXERCISES[exercise_id].where)})"


def test_number(exercise_id: str) -> str:
    section = EXERCISES[exercise_id].section
    position = [e.id for e in section_exercises(section)].index(exercise_id) + 1
    return f"{SECTIONS.index(section) + 1}.{position}"


def section_label(section: str) -> str:
    return f"{section} ({NOTEBOOKS[section]}.ipynb)"
