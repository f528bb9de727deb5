"""Grading code written to other signatures: a user's adapter file (``--adapter``) and the
built-in conventions (course.grading.conventions), both run in the learner's process after
their cells (and again after every restart, see LearnerProcess.add_definition).

What does not apply is decided here, from the convention's declaration or the adapter file's
``NOT_APPLICABLE`` (read as text by the grader), never from anything the learner's process says.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from course.exercises import EXERCISES, SECTIONS, section_exercises
from course.grading.conventions import CONTRACT_CALLS, CONVENTIONS, Convention, lookup_names
from course.grading.conventions.signatures import Signature, fits, read_signatures
from course.grading.features import FEATURES
from course.grading.report import WHY_CHARS, foreign_detail, not_recognised_note, note, probe_detail
from course.sandbox.cells import names_used
from course.sandbox.learner_process import LearnerError, SubmissionCrashed, SubmissionTimeout
from course.grading.submission import Submission, statically_defined


@dataclass
class Adapted:
    """Contract names of one section of one file that come from an adapter or a convention."""

    section: str
    by: str                                                   # "the Hugging Face convention", "the adapter a.py"
    names: dict[str, str]                                     # contract name -> how it is made ('' if by the user)
    exercises: dict[str, str] = field(default_factory=dict)   # exercise id -> why it does not apply
    features: dict[str, str] = field(default_factory=dict)    # feature -> why tests using it do not apply
    kind: str = "convention"                                  # or "adapter": the user's --adapter

    def note(self) -> str:
        made = ("; ".join(f"{name} is {how}" for name, how in self.names.items()) if any(self.names.values())
                else ", ".join(self.names))
        return f"{self.section} graded through {self.by}: {made}"


@dataclass
class UserAdapter:
    """The --adapter file as the grader reads it: its source, or why it cannot be used."""

    path: Path
    source: str = ""
    problem: str = ""
    not_applicable: dict[str, str] = field(default_factory=dict)  # feature or exercise id -> why
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"adapter {self.path.name}"


def read_adapter(path) -> UserAdapter:
    """Read and compile the adapter here; a broken one gets a one-line problem, never a traceback."""
    adapter = UserAdapter(Path(path))
    name = adapter.path.name
    try:
        adapter.source = adapter.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        adapter.problem = f"the adapter {path} cannot be read: there is no such file"
    except (OSError, UnicodeDecodeError) as err:
        adapter.problem = f"the adapter {path} cannot be read: {type(err).__name__}: {err}"
    if adapter.problem:
        return adapter
    try:
        tree = ast.parse(adapter.source, filename=name)
        compile(tree, name, "exec")
    except SyntaxError as err:
        where = f" at line {err.lineno}" if err.lineno else ""
        adapter.problem = f"the adapter {name} has a syntax error{where}: {err.msg}"
        return adapter
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes; code nested too deeply
        adapter.problem = f"the adapter {name} cannot be compiled: {type(err).__name__}: {err}"
        return adapter
    _read_not_applicable(adapter, tree)
    return adapter


def _read_not_applicable(adapter: UserAdapter, tree: ast.Module) -> None:
    """NOT_APPLICABLE = {"interleaved": "why", "rope.rope_matrix": "why"} (or a list of keys), read as a literal."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NOT_APPLICABLE"
                                                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                value = None
            if not isinstance(value, (dict, list, tuple, set)):
                adapter.warnings.append("NOT_APPLICABLE must be a literal dict or list; it was ignored")
                return
            entries = value.items() if isinstance(value, dict) else ((key, "") for key in value)
            for key, why in entries:
                if isinstance(key, str) and (key in FEATURES or key in EXERCISES):
                    adapter.not_applicable[key] = str(why) or FEATURES.get(key, "declared not applicable")
                else:
                    adapter.warnings.append(f"NOT_APPLICABLE: {key!r} is neither a feature ({', '.join(FEATURES)}) "
                                            "nor an exercise id; it was ignored")


def _run(loaded, label: str, source: str, who: str) -> str:
    """Run an adapter in the file's learner process; '' or a one-line reason it failed."""
    try:
        loaded.learner.add_definition(label, source)
        return ""
    except LearnerError as err:
        lines = re.findall(rf'File "<cell {re.escape(label)}>", line (\d+)', err.learner_traceback)
        where = f" at line {lines[-1]}" if lines else ""
        return f"{who} raised {err.learner_type}{where}: {err}"
    except (SubmissionTimeout, SubmissionCrashed) as err:
        return f"{who} did not run: {err}"


def _user_adapted(adapter: UserAdapter, added: set[str], names: dict[str, str]) -> list[Adapted]:
    """One Adapted per section the user's adapter defines names of."""
    by_section: dict[str, dict[str, str]] = {}
    for name, exercise_id in names.items():
        if name in added:
            by_section.setdefault(EXERCISES[exercise_id].section, {})[name] = ""
    declared = adapter.not_applicable
    return [Adapted(section, f"the {adapter.label}", made,
                    {k: f"{why} (declared in the {adapter.label})" for k, why in declared.items()
                     if k in EXERCISES and EXERCISES[k].section == section},
                    {k: why for k, why in declared.items() if k in FEATURES}, kind="adapter")
            for section, made in by_section.items()]


class Bound:
    """Names an adapter made, reached by reference when tested. What is not applicable is granted
    to what the adapter made: a learner's code that later rebinds such a name (say, to its own
    incomplete function) must not be what is tested under those excuses. In each learner process
    (a new one after every restart) the adapter is run once more and its objects are taken at
    once, before any of the learner's code runs again; tests then call those objects."""

    def __init__(self, learner, label: str, source: str, names, binds: bool = False):
        """`binds`: `source` sets `_course_bound` itself (a convention's install); else it defines `names`."""
        self.learner, self.label, self.names = learner, label, list(names)
        self.source = source if binds else \
            f"{source}\n_course_bound = (lambda _made: lambda: _made)(({', '.join(self.names)},))\n"
        self.refs: dict[str, dict] = {}
        self.generation = None

    def target(self, name: str) -> dict:
        """How the learner's process reaches `name` as the adapter made it (a reference)."""
        for _ in range(3):
            if self.generation == self.learner.generation:
                return self.refs[name]
            self.learner.request({"op": "exec", "label": self.label, "code": self.source}, f"running {self.label}")
            generation = self.learner.generation
            reply = self.learner.request({"op": "call", "target": {"__global__": "_course_bound"}, "args": [],
                                          "kwargs": {}}, f"running {self.label}")
            made = reply.get("result") if isinstance(reply, dict) else None
            if not (isinstance(made, (list, tuple)) and len(made) == len(self.names)
                    and all(isinstance(r, dict) and type(r.get("__ref__")) is int for r in made)):
                raise SubmissionCrashed(f"{self.label}: your code tampered with the grading channel")
            if generation == self.learner.generation:  # (else the process was replaced meanwhile: again)
                self.refs = {n: {"__ref__": r["__ref__"]} for n, r in zip(self.names, made)}
                self.generation = generation
        if self.generation != self.learner.generation:
            raise SubmissionCrashed(f"{self.label}: the process running your code kept ending")
        return self.refs[name]


def _convention_adapted(convention: Convention, present: set[str], used: set[str]) -> Adapted | None:
    """The names `convention` can add to this file's section from the learner's `used` names (only
    names not `present` already)."""
    provided, missing = convention.provides(used)
    made = {n: how for n, how in provided.items() if n not in present}
    if not made:
        return None
    exercises = {}
    for exercise in section_exercises(convention.section):
        if exercise.name not in present and exercise.name not in made:
            why = missing.get(exercise.name, f"{convention.title} has no counterpart of {exercise.name}")
            exercises[exercise.id] = why
    return Adapted(convention.section, convention.title, made, exercises, dict(convention.cannot))


@dataclass
class Adaptation:
    """What the user's adapter and the conventions made of one file, for the grader to apply to it."""

    adapted: list[Adapted] = field(default_factory=list)
    defined: dict[str, str] = field(default_factory=dict)  # contract names they make available -> "callable"/"class"
    bound: dict = field(default_factory=dict)              # names an adapter made, tested by reference (Bound)
    notes: list[dict] = field(default_factory=list)
    unrecognised: dict[str, str] = field(default_factory=dict)  # contract names defined with another library's
    # signature that no convention fits -> why they are not graded as the course's
    adapter_failed: dict | None = None  # the note on why the user's adapter failed in this file
    adapter_used: bool = False          # the user's adapter made some contract name here


def _fitting(convention: Convention, signatures: dict[str, Signature]) -> list[str] | None:
    """The learner's names `convention` would use (required, then fitting optional ones in order),
    or None when a required one is missing or its signature cannot take the convention's call."""
    if not all(fits(signatures.get(n), call) for n, call in convention.signatures.items()):
        return None
    return [*convention.signatures, *(n for n, call in convention.optional.items() if fits(signatures.get(n), call))]


def _mismatched(loaded, signatures: dict[str, Signature], section: str) -> set[str]:
    """Contract names of `section` the learner defines with a signature that cannot take the
    contract's call (another library's class of the same name): a convention may grade them."""
    return {n for n, call in CONTRACT_CALLS.items() if n in loaded.defined and n in signatures
            and EXERCISES.get(f"{section}.{n}") and not fits(signatures[n], call)}


def _claimed(loaded, signatures: dict[str, Signature], conventions, section: str) -> set[str]:
    """Contract names of `section` the learner defines with a signature that fits a convention's own
    (lucidrains' RotaryEmbedding(dim, theta=...), whose forward(t, seq_len=, offset=) the contract's
    call also fits): another library's, which that convention may grade."""
    return {n for c in conventions if _fitting(c, signatures) is not None for n in c.signatures
            if n in CONTRACT_CALLS and n in loaded.defined and EXERCISES.get(f"{section}.{n}")}


def _recognise(loaded, where: str, made: Adaptation) -> None:
    """Add each section's first convention that fits and passes its probe to `made`; a section
    whose conventions' names are found but none fits gets a "not recognised" note instead."""
    asked = lookup_names() | {n for n in CONTRACT_CALLS if n in loaded.defined}
    signatures = read_signatures(loaded.learner.signatures(asked), asked)
    for section in SECTIONS:
        conventions = [c for c in CONVENTIONS if c.section == section]
        mismatched = _mismatched(loaded, signatures, section) | _claimed(loaded, signatures, conventions, section)
        present = (set(loaded.present) | set(made.defined)) - mismatched
        # the names of each convention whose required names are all defined, whatever their signatures
        found = sorted({n for c in conventions if set(c.signatures) <= set(signatures)
                        for n in c.looks_for() if n in signatures} | mismatched)
        missing = {n for n in CONTRACT_CALLS if EXERCISES.get(f"{section}.{n}") and n not in present}
        tried = []
        for convention in conventions:
            used = _fitting(convention, signatures)
            adapted = None if used is None else _convention_adapted(convention, present, set(used))
            if adapted is None:
                continue
            failed = _probe(loaded, convention, used, list(adapted.names))
            passing = [n for n in adapted.names if n not in failed]
            label = f"grader's adapter for {convention.title}"
            source = convention.install_source(used, passing)
            problem = _run(loaded, label, source, f"its adapter, on your {', '.join(used)},") if passing else ""
            if problem or not passing:
                tried.append({"convention": convention.title, "why": problem or "; ".join(failed.values())})
                continue
            adapted.names = {n: how for n, how in adapted.names.items() if n in passing}
            made.unrecognised.update({n: probe_detail(n, convention.title, why) for n, why in failed.items()})
            made.bound.update(dict.fromkeys(passing, Bound(loaded.learner, label, source, passing, binds=True)))
            made.adapted.append(adapted)
            made.defined.update({n: "class" if n[0].isupper() else "callable" for n in passing})
            break
        else:
            if found and missing:
                made.notes.append(not_recognised_note(section, [signatures[n].as_data() for n in found], tried, where))
            made.unrecognised.update({n: foreign_detail(n, signatures[n].as_data()) for n in mismatched})


def _probe(loaded, convention: Convention, used: list[str], names: list[str]) -> dict[str, str]:
    """{contract name: why} for each of `names` that `convention` cannot make of the learner's `used`
    names or whose probe call fails (course.adapting.probe), as the learner's process reports it
    (only the names are relied on: a forged answer can only make its own code "not recognised")."""
    label = f"grader's probe of {convention.title}"
    try:
        loaded.learner.request({"op": "exec", "label": label, "code": convention.failures_source(used, names)}, label)
        reply = loaded.learner.request({"op": "call", "target": {"__global__": "_course_failures"}, "args": [],
                                        "kwargs": {}}, label)
    except (LearnerError, SubmissionTimeout, SubmissionCrashed) as err:
        return dict.fromkeys(names, f"its probe did not run: {err}")
    failed = reply.get("result") if isinstance(reply, dict) else None
    if not (isinstance(failed, dict) and all(n in names and isinstance(why, str) for n, why in failed.items())):
        return dict.fromkeys(names, "its probe's answer was not a list of names")
    return {n: why[:WHY_CHARS] for n, why in failed.items()}


class Adapting:
    """The user's adapter (if any), then the conventions, run in each file's process once its
    cells have run (`adapt`, one call per file, from any thread); `notes` for the report."""

    def __init__(self, adapter_path, conventions: bool = True):
        self.adapter = read_adapter(adapter_path) if adapter_path else None
        self.conventions = conventions  # recognise the built-in conventions (Limits.conventions)
        self.usable = self.adapter is not None and not self.adapter.problem

    def names_used(self) -> frozenset[str] | None:
        """The names the user's adapter reads from the learner's code; None if that cannot be told."""
        if not self.usable:
            return frozenset()
        used = names_used(self.adapter.source)
        return None if used is None else frozenset(used)

    def adapt(self, loaded, names: dict[str, str], where: str) -> Adaptation:
        """What the adapter and conventions make of a loaded file (its process, `defined` and
        `present`, read only). `where`: the file, for its notes."""
        made = Adaptation()
        if loaded.failure:
            return made
        adapter = self.adapter
        problem = _run(loaded, adapter.label, adapter.source, f"the {adapter.label}") if self.usable else ""
        if problem:
            made.adapter_failed = note("adapter", f"{problem}; graded without it", where)
        available = set(loaded.learner.defined(set(names)))
        if self.usable and not problem:
            mine = statically_defined(Submission(adapter.path, [("adapter", adapter.source)]), names)
            added = {n for n in names if n in available and (n in mine or n not in loaded.defined)}
            made.adapted += _user_adapted(adapter, added, names)
            if added:
                bound = Bound(loaded.learner, adapter.label, adapter.source, sorted(added))
                made.bound.update(dict.fromkeys(added, bound))
            made.adapter_used = bool(added)
        made.defined.update({n: "callable" for n in names if n in available and n not in loaded.defined})
        if self.conventions:
            _recognise(loaded, where, made)
        made.notes += [note(a.kind, a.note(), where) for a in made.adapted]
        return made

    def notes(self, adaptations: list[Adaptation]) -> list[dict]:
        """The report's notes on the adapter and conventions, from each file's Adaptation in order."""
        adapter = self.adapter
        notes = [note("adapter", f"{adapter.problem}; graded without it")] if adapter and adapter.problem else []
        notes += [note("adapter", f"the {adapter.label}: {w}") for w in adapter.warnings] if adapter else []
        for made in adaptations:
            notes += made.notes
        if self.usable and not any(made.adapter_used for made in adaptations):
            failures = [made.adapter_failed for made in adaptations if made.adapter_failed]
            notes.append(failures[0] if failures else note(
                "adapter", f"the {adapter.label} defines none of the course's names (e.g. apply_rope, alibi_slopes): "
                           "nothing was graded through it"))
        return notes


def not_applicable(loaded, exercise_id: str) -> str:
    """Why an exercise does not apply to this file's adapter or convention ('' if it does)."""
    for adapted in loaded.adaptations:
        if exercise_id in adapted.exercises:
            return adapted.exercises[exercise_id]
    return ""


def features_not_applicable(owners: dict, exercise_ids) -> dict[str, dict[str, str]]:
    """For each exercise graded through an adapter or convention: feature -> reason a test using it is not run."""
    table = {}
    for exercise_id in exercise_ids:
        name = EXERCISES[exercise_id].name
        for adapted in owners[exercise_id.split(".")[0]].adaptations:
            if name in adapted.names and adapted.features:
                table[exercise_id] = {feature: f"not applicable to {adapted.by}: {why}"
                                      for feature, why in adapted.features.items()}
    return table
