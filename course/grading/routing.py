"""The plan of a grading, made once every file of the submission is loaded: which file grades
each section, which exercises are graded and which of their tests run, what does not apply.

- A section is graded on one file: the section's own file (``06_rope*.ipynb`` or ``rope.py``)
  first, then the file defining most of its names, then the first file.
- The exercises graded are those asked for (`only`, the one place it is read), else every
  exercise of each section some file defines names of, and those of a section a module that
  does not parse was meant for (graded 0 with the reason, not left out as if never submitted).
- An exercise's tests run when its file defines its name and its adapter or convention does not
  declare it not applicable; a test using a feature the convention lacks is not run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from course.exercises import EXERCISES, NOTEBOOKS, SECTIONS, section_exercises
from course.grading.adapters import features_not_applicable, not_applicable


def is_sections_own(path: Path, section: str) -> bool:
    """``06_rope*.ipynb`` (or ``rope.py``) is the rope section's own file."""
    stem = path.stem.lower()
    return stem.startswith(NOTEBOOKS[section]) or stem == section


def _owner_rank(loaded, section: str) -> tuple:
    """The section's own notebook (by name) first, then the file defining most of its names, then the first file."""
    section_names = {e.name for e in section_exercises(section)}
    return (not is_sections_own(loaded.submission.path, section), -len(section_names & loaded.present), loaded.index)


_DEFINITION = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)


def _meant_for(loaded, names) -> list[str]:
    """The sections a module that does not parse was meant for: its name's (06_rope.py) and those
    of the graded names its text defines."""
    code = loaded.submission.cells[0][1]
    defined = {names[n].split(".")[0] for n in _DEFINITION.findall(code) if n in names}
    return [s for s in SECTIONS if s in defined or is_sections_own(loaded.submission.path, s)]


@dataclass
class Plan:
    """What is graded and how (see the module's docstring)."""

    exercise_ids: list[str]   # graded, in the course's order
    owners: dict              # section -> the file (a grader.LoadedFile) grading it
    touched: dict             # section -> the files defining some of its names
    to_run: list[str]         # exercise ids whose tests run
    features: dict            # exercise id -> {feature: why its tests using it are not run}

    @property
    def suites(self) -> list[str]:
        """The sections whose hidden suite the grading runs, in the course's order."""
        return [s for s in SECTIONS if any(i.split(".")[0] == s for i in self.to_run)]


def plan(files, names: dict[str, str], only=None) -> Plan:
    """The plan for `files` once every one is loaded; `only`: the exercise ids asked for."""
    asked = set(only) if only else None  # None: every exercise of each section some file defines
    touched: dict[str, list] = {}
    for loaded in files:
        for section in loaded.sections(names):
            touched.setdefault(section, []).append(loaded)
    if asked is not None:
        exercise_ids = [i for i in EXERCISES if i in asked]
    else:
        exercise_ids = [e.id for s in SECTIONS if s in touched for e in section_exercises(s)]
    owners = {section: min(touched.get(section) or files, key=lambda g: _owner_rank(g, section))
              for section in sorted({i.split(".")[0] for i in exercise_ids}, key=SECTIONS.index)}
    to_run = [i for i in exercise_ids if _runs(owners[i.split(".")[0]], i)]
    unparsed = {}  # section -> the module that does not parse meant for it, when no other file grades it
    for loaded in (g for g in files if g.syntax_error):
        for section in _meant_for(loaded, names):
            if section not in owners:
                unparsed.setdefault(section, loaded)
    exercise_ids += [e.id for s in unparsed for e in section_exercises(s) if asked is None or e.id in asked]
    order = list(EXERCISES)
    return Plan(sorted(exercise_ids, key=order.index), {**owners, **unparsed}, touched, to_run,
                features_not_applicable(owners, to_run))


def _runs(owner, exercise_id: str) -> bool:
    return EXERCISES[exercise_id].name in owner.defined and not not_applicable(owner, exercise_id)
