"""One learner's submission to grade: the one request every way of grading hands the grader
(``python -m course.grade``, ``--serve``'s JSON lines from the batch workers and the nbgrader
bridge, Dask, Gradescope), so that an option such as ``--adapter`` means the same everywhere."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from course.exercises import EXERCISES
from course.sandbox.limits import Limits


@dataclass(frozen=True)
class GradeRequest:
    paths: tuple[str, ...]                   # files, or a folder, of one learner: graded together
    beside: tuple[str, ...] = ()             # folders whose files are copied beside the code, not graded
    only: tuple[str, ...] | None = None      # exercise ids; None: every section the files touch
    limits: Limits = field(default_factory=Limits)  # (they say whether conventions are recognised)
    adapter: str | None = None               # a .py defining the course's names (course.grading.adapters)
    keep: bool = False                       # keep the learner's process for the next request (nbgrader bridge)

    def to_json(self) -> dict:
        return {"paths": list(self.paths), "beside": list(self.beside),
                "only": None if self.only is None else list(self.only), "limits": asdict(self.limits),
                "adapter": self.adapter, "keep": self.keep}

    @classmethod
    def from_json(cls, data, limits: Limits) -> GradeRequest:
        """The request a JSON object describes, with `limits` unless it gives its own (a server's,
        as its command line set them); ValueError naming what is wrong with it."""
        if not isinstance(data, dict) or set(data) - {f.name for f in fields(cls)}:
            raise ValueError("a grade request is an object with paths, beside, only, limits, adapter, keep")
        paths, beside, only = data.get("paths"), data.get("beside", []), data.get("only")
        for name, value in (("paths", paths), ("beside", beside), ("only", [] if only is None else only)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
        if only is not None and set(only) - set(EXERCISES):
            raise ValueError(f"unknown exercise ids in only: {sorted(set(only) - set(EXERCISES))}")
        given = data.get("limits", {})
        known = [f.name for f in fields(Limits)]
        if not isinstance(given, dict) or set(given) - set(known) or not all(
                isinstance(v, (int, float)) for v in given.values()):
            raise ValueError(f"limits must be an object of numbers named {', '.join(known)}")
        adapter, keep = data.get("adapter"), data.get("keep", False)
        if adapter is not None and not isinstance(adapter, str) or not isinstance(keep, bool):
            raise ValueError("adapter must be a path or null, keep a boolean")
        return cls(tuple(paths), tuple(beside), None if only is None else tuple(only),
                   Limits(**{**asdict(limits), **given}), adapter, keep)
