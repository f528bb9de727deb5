"""Which of a learner's files grades each section, and when that section's tests may start.

Every file runs in its own learner process, several at once (course.grading.grader); the
hidden suites run meanwhile, each section as soon as the file that grades it is ready:

- A section's file is known before any cell runs when exactly one file is the section's own
  (``06_rope*.ipynb`` or ``rope.py``) and its text defines some of the section's names. Its
  tests start once that file's cells (and adapters) have run, unless that file also defines
  names of an earlier section: sections graded in one process keep the course's order.
- Every other section waits for all files (a file may define a section's names only when it
  runs, or through a recognised convention), then is decided as before: the section's own
  file first, then the file defining most of its names, then the first file.

The decisions are the same whenever they are made; only when the tests start differs.
"""
from __future__ import annotations

import queue
from dataclasses import dataclass, field
from pathlib import Path

from course.exercises import EXERCISES, NOTEBOOKS, SECTIONS, section_exercises
from course.grading.adapters import features_not_applicable, not_applicable


def is_sections_own(path: Path, section: str) -> bool:
    """``06_rope*.ipynb`` (or ``rope.py``) is the rope section's own file."""
    stem = path.stem.lower()
    return stem.startswith(NOTEBOOKS[section]) or stem == section


def _owner_rank(graded, section: str) -> tuple:
    """The section's own notebook (by name) first, then the file defining most of its names, then the first file."""
    section_names = {e.name for e in section_exercises(section)}
    return (not is_sections_own(graded.submission.path, section), -len(section_names & graded.present), graded.index)


@dataclass
class Plan:
    """What is graded, once every file is ready: exercise ids in report order, the files defining
    names of each section, each section's file, and the exercise ids whose tests run."""

    exercise_ids: list[str]
    touched: dict                                   # section -> the files defining some of its names
    owners: dict = field(default_factory=dict)      # section -> its file (a grader._Graded)
    to_run: list[str] = field(default_factory=list)


def plan(files, names: dict[str, str], only) -> Plan:
    touched: dict[str, list] = {}
    for graded in files:
        for section in graded.sections(names):
            touched.setdefault(section, []).append(graded)
    if only:
        exercise_ids = [i for i in EXERCISES if i in set(only)]
    else:
        exercise_ids = [e.id for s in SECTIONS if s in touched for e in section_exercises(s)]
    result = Plan(exercise_ids, touched)
    for section in sorted({i.split(".")[0] for i in exercise_ids}, key=SECTIONS.index):
        result.owners[section] = min(touched.get(section) or files, key=lambda g: _owner_rank(g, section))
    result.to_run = [i for i in exercise_ids if _runs(result.owners[i.split(".")[0]], i)]
    return result


def _runs(owner, exercise_id: str) -> bool:
    return EXERCISES[exercise_id].name in owner.defined and not not_applicable(owner, exercise_id)


class Schedule:
    """The sections to test, in the order they become ready (see the module's docstring).

    Loading threads call `file_ready(index)` (or `file_failed(index, error)`) once per file;
    the suites iterate over the schedule, which blocks until the next section is ready and
    yields (section, exercise ids whose tests run). `not_applicable` (exercise id -> {feature:
    why}) is filled for a section before it is yielded. After the last one, `plan` holds the
    whole decision; if a file failed, the schedule stops and `error` holds what it raised."""

    def __init__(self, files, names: dict[str, str], only):
        self.files, self.names, self.only = files, names, only
        self.not_applicable: dict[str, dict[str, str]] = {}
        self.owners: dict = {}  # section -> its file, set before the section is yielded
        self.plan: Plan | None = None
        self.error: BaseException | None = None
        self._ready: queue.Queue = queue.Queue()
        wanted = {i.split(".")[0] for i in only} if only else set(SECTIONS)
        self.early = {}  # section -> its file, known before any cell runs
        for section in SECTIONS:
            own = [g for g in files if is_sections_own(g.submission.path, section)]
            if section in wanted and len(own) == 1 and section in own[0].static_sections:
                self.early[section] = own[0]

    def file_ready(self, index: int) -> None:
        self._ready.put((index, None))

    def file_failed(self, index: int, error: BaseException) -> None:
        self._ready.put((index, error))

    def __iter__(self):
        waiting, started = {g.index for g in self.files}, set()
        while waiting:
            index, error = self._ready.get()
            if error is not None:
                self.error = error
                return
            waiting.discard(index)
            for section, graded in self.early.items():
                if graded.index == index and self._may_start_early(section, graded):
                    started.add(section)
                    self.owners[section] = graded
                    yield section, self._exercises_to_run(section, graded)
        self.plan = plan(self.files, self.names, self.only)
        for section, owner in self.plan.owners.items():
            if section in started:
                continue
            to_run = [i for i in self.plan.to_run if i.split(".")[0] == section]
            self.not_applicable.update(features_not_applicable({section: owner}, to_run))
            self.owners[section] = owner
            yield section, to_run

    def _may_start_early(self, section: str, graded) -> bool:
        earlier = SECTIONS[:SECTIONS.index(section)]
        return not graded.failure and not set(earlier) & graded.sections(self.names)

    def _exercises_to_run(self, section: str, owner) -> list[str]:
        ids = [e.id for e in section_exercises(section) if not self.only or e.id in set(self.only)]
        to_run = [i for i in ids if _runs(owner, i)]
        self.not_applicable.update(features_not_applicable({section: owner}, to_run))
        return to_run
