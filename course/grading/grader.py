"""Grade one learner's submission: every file run in its own learner process, each section
routed to one of them, the hidden suites run here on copies of what the learner's code returns.
"""
from __future__ import annotations

import ast
import contextlib
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course.cores import available_cpus
from course.exercises import EXERCISES, SECTIONS, graded_names
from course.grading import scoring
from course.grading.adapters import Adaptation, Adapting, not_applicable
from course.grading.conventions import lookup_names
from course.grading.report import (NOTHING_RECOGNISED, REPORT_VERSION, checked, failed_report, not_recognised_note,
                                   note)
from course.grading.request import GradeRequest
from course.grading.remote import SubmissionProxy
from course.grading.staging import Snapshot, snapshot
from course.grading.submission import Submission, UnreadableSubmission, read_submission, statically_defined
from course.grading.routing import Plan, is_sections_own, plan
from course.grading.suite_runner import TestResult, check_suites, run_suites
from course.sandbox.cells import names_bound
from course.sandbox.learner_process import LearnerError, Limits, LearnerProcess, SubmissionCrashed, SubmissionTimeout

MAX_NOTES = 100  # cells that raised or hung, in a report: thousands of them must not make a report of unbounded
#                  size; the other notes (a file's, a section's) are bounded by the files and always kept


def _static_names(submission: Submission, names) -> tuple[set[str], str]:
    """(the graded names the code's text defines, '' or why its text could not be analysed): the
    text is the learner's, so whatever the analysis trips on is a note about that file, never the
    end of the grading (its names are then known only as its code runs)."""
    try:
        return statically_defined(submission, names), ""
    except Exception as err:  # noqa: BLE001 - see the docstring
        return set(), f"{type(err).__name__}: {err}"


def _missing_detail(name: str, submission: Submission, outcomes) -> str:
    text = f"`{name}` is not defined in your submission."
    for (label, code), outcome in zip(submission.cells, outcomes):
        if outcome.error and name in _static_names(Submission(submission.path, [(label, code)]), [name])[0]:
            where = "your module" if label == "module" else f"cell {label}"
            return f"{text} Its definition is in {where}, which failed: {outcome.error}"
    return text


def _syntax_error(submission: Submission) -> str:
    """Why a module (.py) does not parse, "" if it does: none of its code can run."""
    if submission.path.suffix.lower() != ".py" or not submission.cells:
        return ""
    try:
        compile(submission.cells[0][1], submission.path.name, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as err:
        return f"{type(err).__name__}: {err.msg} (line {err.lineno})"
    except (ValueError, MemoryError, RecursionError) as err:
        return f"{type(err).__name__}: {err}"
    return ""


def _unparsed_detail(name: str, loaded) -> str:
    return (f"`{name}` could not be graded: {loaded.submission.path.name} does not parse ({loaded.syntax_error}), "
            "so none of its code ran.")


def grade_file(path, only=None, limits: Limits | None = None) -> dict:
    """Grade a notebook or module; `only` restricts to exercise ids. Returns the report dict."""
    return grade_files([path], only=only, limits=limits)


_LIVE: dict = {}  # id -> learner process of the submissions being graded (for close_all_learners)
_LIVE_LOCK = threading.Lock()


def close_all_learners() -> None:
    """End every learner process this grader has open, now (a grader being stopped calls this
    from its signal handler before exiting)."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for learner in live:
        try:
            learner.close()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


class KeptLearners:
    """Learner processes kept from one request to the next of the same client: a notebook kernel
    grading exercise after exercise (course.nbgrader_bridge sends its executed cells each time).

    A kept process has run a file's cells so far. A request whose cells continue them (the same
    file, the same other files beside it, the same limits) runs only the new cells there, then is
    graded in a snapshot of the process (LearnerProcess.snapshot: a fork, gone after grading), so every
    grading sees the process exactly as the cells alone left it, as a fresh process running them
    all would be. Anything else gets a fresh process; so does the next request after a grading
    that restarted the process or wrote in its working directory."""

    MAX_KEPT = 4

    @staticmethod
    def _drop(learner: LearnerProcess) -> None:
        with _LIVE_LOCK:
            _LIVE.pop(id(learner), None)
        learner.close()

    def __init__(self):
        self._kept: dict[tuple, LearnerProcess] = {}

    @staticmethod
    def key(submission: Submission, limits: Limits, root: Path, copies: list) -> tuple:
        """What must be equal for a kept process to serve: the file's place, the limits, and the
        content of every other file copied beside it."""
        import hashlib

        own = Path(os.path.abspath(submission.path))
        digest = hashlib.sha256()
        for relative, source in copies:
            if Path(os.path.abspath(source)) == own:
                continue
            digest.update(relative.encode() + b"\0")
            try:
                digest.update(hashlib.sha256(Path(source).read_bytes()).digest())
            except OSError:
                digest.update(b"unreadable")
        module = submission.identity(root)
        return (module["file"], module["notebook"], repr(limits), digest.hexdigest())

    def take(self, submission: Submission, limits: Limits, root: Path, copies: list) -> tuple[LearnerProcess | None, tuple]:
        """(a kept process whose cells begin this submission's, or None; the key to give it back under)."""
        key = self.key(submission, limits, root, copies)
        learner = self._kept.pop(key, None)
        if learner is not None and (submission.cells[:len(learner.cells)] != learner.cells or not learner.ping()):
            self._drop(learner)
            learner = None
        return learner, key

    def give_back(self, key: tuple, learner: LearnerProcess, files_state) -> bool:
        """End the grading's snapshot; keep the process if it is as its cells left it (True)."""
        kept = files_state is not None and learner.release() and learner.files_state() == files_state
        if not kept:
            learner.close()
            return False
        old = self._kept.pop(key, None)
        if old is not None:
            self._drop(old)
        self._kept[key] = learner
        while len(self._kept) > self.MAX_KEPT:
            self._drop(self._kept.pop(next(iter(self._kept))))
        return True

    def close(self) -> None:
        for learner in self._kept.values():
            self._drop(learner)
        self._kept.clear()


class LoadedFile:
    """One file of a submission, its learner process and what it defines once loaded: its cells
    run, then its adapter and conventions (`apply`)."""

    def __init__(self, index: int, submission: Submission, names: dict[str, str], limits: Limits, root: Path,
                 copies: list, warm: KeptLearners | None = None):
        self.index, self.submission = index, submission
        self.file = submission.identity(root)["file"]  # its name in the report: relative to the submission's root
        self.warm, self.warm_key, self.files_state = warm, None, None
        kept = None
        if warm is not None:
            kept, self.warm_key = warm.take(submission, limits, root, copies)
        # The learner's code runs in a copy of their files (course.grading.staging), as from its own file.
        self.learner = kept or LearnerProcess(submission.cells, limits, files=copies, module=submission.identity(root))
        self.kept = kept is not None
        with _LIVE_LOCK:
            _LIVE[id(self.learner)] = self.learner
        self.defined: dict[str, str] = {}
        self.adaptations: list = []  # course.grading.adapters.Adapted: names graded through an adapter or convention
        self.bound: dict = {}  # names an adapter made, tested by reference (course.grading.adapters.Bound)
        self.unrecognised: dict[str, str] = {}  # names defined with another library's signature -> why not graded
        self.static, self.unanalysed = _static_names(submission, names)  # graded names its text defines
        self.syntax_error = "" if self.static else _syntax_error(submission)
        self.present: set[str] = set(self.static)
        self.failure = ""  # the learner process could not start

    def start(self, names) -> None:
        try:
            if self.kept:  # run only the cells it has not run yet
                self.learner.reset_clock()
                self.learner.extend(self.submission.cells[len(self.learner.cells):])
            else:
                self.learner.start()
            if self.warm is not None:  # grade in a copy of the process: it stays as the cells left it
                state = self.learner.files_state()
                if self.learner.snapshot():
                    self.files_state = state
            self.defined = self.learner.defined(names)
        except (SubmissionTimeout, SubmissionCrashed, LearnerError) as err:
            self.failure = f"{type(err).__name__}: {err}"
        self.present = set(self.defined) | self.static

    def apply(self, made: Adaptation) -> None:
        """Take what the adapter and conventions made of this file (Adapting.adapt)."""
        self.adaptations, self.bound, self.unrecognised = made.adapted, made.bound, made.unrecognised
        self.defined.update(made.defined)
        for name in made.unrecognised:  # not the course's: not tested (the section stays touched)
            self.defined.pop(name, None)
        self.present |= set(made.defined)

    def finish(self) -> None:
        """Close the learner's process, or give it back to be kept."""
        with _LIVE_LOCK:
            _LIVE.pop(id(self.learner), None)
        if self.warm is not None:
            if self.warm.give_back(self.warm_key, self.learner, self.files_state):
                with _LIVE_LOCK:
                    _LIVE[id(self.learner)] = self.learner
        else:
            self.learner.close()

    def sections(self, names) -> set[str]:
        return {names[n].split(".")[0] for n in self.present}


class _Router:
    """Stands for several learner processes in one pytest session: each test is routed to the
    process of its exercise's section (SubmissionPlugin calls set_exercise before each test)."""

    def __init__(self, owners: dict):
        self.owners = owners  # section -> its LoadedFile (routing.Plan.owners)
        self.current: LoadedFile | None = None

    def set_exercise(self, exercise_id: str) -> None:
        self.current = self.owners[exercise_id.split(".")[0]]
        self.current.learner.set_exercise(exercise_id)


class _RoutedProxy:
    """The `submission` fixture over a _Router: the current section's SubmissionProxy."""

    def __init__(self, router: _Router):
        self._router = router
        self._proxies: dict[int, SubmissionProxy] = {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        loaded = self._router.current
        if loaded is None:
            raise AssertionError("no exercise is being graded")
        if loaded.index not in self._proxies:
            self._proxies[loaded.index] = SubmissionProxy(loaded.learner, loaded.defined, loaded.bound)
        return getattr(self._proxies[loaded.index], name)


_DEFINITION_TYPES = ("builtins.function", "builtins.builtin_function_or_method", "builtins.type", "abc.ABCMeta")


def _defined_elsewhere(exercise_ids, owners, root: Path) -> list[dict]:
    """Notes on graded names (of exercises that earned points) that are not the learner's own code:
    a function or class whose `__module__` is a package of the course or of the Python installation
    (torch, ...), e.g. `from course.lab.model import alibi_slopes`. (Other callables, such as a
    functools.partial over the learner's own function, name their class's module: not asked.)
    The learner's process could say otherwise: a note, never a score."""
    import importlib.util

    import course

    # where the course package and the Python installation (standard library, site-packages) are
    installed = {os.path.join(os.path.realpath(p), "") for p in
                 [*course.__path__, sys.prefix, sys.base_prefix, sys.exec_prefix] if os.path.isdir(p)}
    notes = []
    for exercise_id in exercise_ids:
        owner, name = owners[exercise_id.split(".")[0]], EXERCISES[exercise_id].name
        if name not in owner.defined or not_applicable(owner, exercise_id):
            continue
        owner.learner.set_exercise(f"origin of {name}")
        target = {"__global__": name}
        try:
            kind = owner.learner.request({"op": "type_names", "target": target})
            if not (isinstance(kind, list) and kind and kind[0] in _DEFINITION_TYPES):
                continue
            module = owner.learner.request({"op": "getattr", "target": target, "attr": "__module__"})
        except (LearnerError, SubmissionTimeout, SubmissionCrashed):
            continue
        top = module.split(".")[0] if isinstance(module, str) else ""
        try:
            spec = importlib.util.find_spec(top) if top.isidentifier() and not top.startswith("__") else None
        except (ImportError, ValueError):
            spec = None
        found = [spec.origin or "", *(spec.submodule_search_locations or [])] if spec else []
        if any(os.path.join(os.path.realpath(f), "").startswith(root) for f in found if f for root in installed):
            notes.append(note("origin", f"`{name}` comes from `{module[:100]}`, not from your own code: it was "
                                        f"graded as submitted", owner.file))
    return notes


def grade(request: GradeRequest, parallel: int | None = None, warm: KeptLearners | None = None,
          after=None) -> dict:
    """Grade one learner's submission made of one or more notebooks/modules, as one report.

    Each file runs in its own learner process (their cells do not share a namespace); each
    section is graded on one file: the section's own notebook if present (``06_rope*.ipynb``),
    else the file that defines most of its names (course.grading.routing), decided once every
    file is loaded; the hidden suites then run in one pytest session. A single file gives exactly
    ``grade_file``'s report. A folder among the request's paths is the learner's own: its notebooks
    and modules are graded, and every file's process works in a copy of its visible files (helper
    modules, data); a file given alone is copied alone. `warm` keeps the learner processes for the
    client's next request when the request asks to (see KeptLearners). `after(owners)` is called once
    the hidden suites have run, while every learner process is alive, with the LoadedFile of each
    graded section (Gradescope's visible checks run there).
    """
    with snapshot(request.paths, request.limits.file_mb, request.beside) as staged:  # read once, no link followed
        return _grade_snapshot(staged, request.only, request.limits, parallel, request.adapter,
                               warm if request.keep else None, after)


@contextlib.contextmanager
def opened(path, limits: Limits, adapter=None):
    """The one way to open a learner's file outside a grading (the hidden suites' --submission,
    the probe's factories): as a grading opens each file, copied without following links, run in
    a confined learner process, with `adapter` and (when `limits` say so) the conventions applied.
    Yields the LoadedFile (ValueError if the file cannot be read); its process ends on leaving."""
    names = graded_names()
    adapting = Adapting(adapter, conventions=limits.conventions)
    with snapshot([path], limits.file_mb) as staged:
        submissions, unreadable = _read(staged, adapting)
        if not submissions:
            raise ValueError(_nothing_readable(staged, unreadable))
        loaded = LoadedFile(0, submissions[0], names, limits, staged.root, staged.copies)
        try:
            _load([loaded], names, 1, adapting)
            yield loaded
        finally:
            loaded.finish()


def grade_files(paths, only=None, limits: Limits | None = None, parallel: int | None = None, adapter=None,
                warm: KeptLearners | None = None, beside=()) -> dict:
    """`grade` for a caller in this process (tests, benchmarks), the request's fields as arguments."""
    request = GradeRequest(tuple(map(os.fspath, paths)), tuple(map(os.fspath, beside)), tuple(only) if only else None,
                           limits or Limits(), None if adapter is None else os.fspath(adapter), keep=warm is not None)
    return grade(request, parallel, warm)


def _grade_snapshot(staged: Snapshot, only, limits: Limits, parallel: int | None, adapter,
                    warm: KeptLearners | None, after=None) -> dict:
    """The stages of a grading, one after the other: read every file, load them all (cells, then
    adapter and conventions), plan, run the hidden suites once, score, report."""
    names = graded_names()
    adapting = Adapting(adapter, conventions=limits.conventions)
    submissions, unreadable = _read(staged, adapting)
    if not submissions:
        return failed_report(_nothing_readable(staged, unreadable))
    submissions, idle = _defining_something(submissions, names, adapting)
    files = [LoadedFile(i, s, names, limits, staged.root, staged.copies, warm) for i, s in enumerate(submissions)]
    try:
        adaptations = _load(files, names, parallel, adapting)
        planned = plan(files, names, only)
        results = _run(planned)
        if after is not None:
            after(dict(planned.owners))
        exercises = _score(planned, results)
        notes = _notes(files, staged.root, unreadable, adapting.notes(adaptations), exercises, planned)
        notes += [note("not_run", "defines none of the names grading looks for, so it was not run", s.identity(
            staged.root)["file"]) for s in idle]
    finally:
        for loaded in files:
            loaded.finish()
    # no file defines a course name and the conventions recognised nothing either (not: `only` left nothing)
    nothing = (not exercises and limits.conventions and adapter is None
               and not any(loaded.present or loaded.adaptations for loaded in files))
    if nothing and not any(n["kind"] == "not_recognised" for n in notes):
        notes.append(not_recognised_note(None, [], []))
    return checked({
        **({"error": NOTHING_RECOGNISED} if nothing else {}),
        "version": REPORT_VERSION,
        "score": round(sum(e["score"] for e in exercises), 2),
        "max_score": float(sum(e["max_score"] for e in exercises)),
        "exercises": exercises,
        "notes": notes,
        "files": {g.file: {
            "sections": [s for s, o in planned.owners.items() if o is g],
            "adapted_by": list(dict.fromkeys(a.by for a in g.adaptations))} for g in files}
        | {s.identity(staged.root)["file"]: {"sections": [], "adapted_by": []} for s in idle},
    })


def _read(staged: Snapshot, adapting: Adapting) -> tuple[list[Submission], list[tuple[Path, str]]]:
    """Every graded file read into the cells its process runs; (path, why) for those
    that cannot be graded."""
    unreadable, submissions = [(path, f"{path} {why}") for path, why in staged.refused], []
    for path in staged.graded:
        try:
            submissions.append(read_submission(path, also_used=adapting.names_used()))
        except UnreadableSubmission as err:
            unreadable.append((path, str(err)))
    return submissions, unreadable


def _defining_something(submissions: list[Submission], names, adapting: Adapting) -> tuple[list, list]:
    """(the files to run, the files not run): among several files, one whose text binds none of
    the names grading looks for (graded, a convention's, the adapter's) is not run, so that a
    workspace's lab notebook does not train models to be graded on nothing. A file whose names
    cannot be told (a star import, exec, globals()) runs; so does a lone file."""
    used = adapting.names_used()
    if len(submissions) < 2 or used is None:
        return submissions, []
    wanted = set(names) | lookup_names() | used
    run, idle = [], []
    for submission in submissions:
        bound = [names_bound(code) for _, code in submission.cells]
        silent = all(b is not None and not (b & wanted) for b in bound)
        (idle if silent else run).append(submission)
    return run, idle


def _nothing_readable(staged: Snapshot, unreadable) -> str:
    if len(staged.graded) + len(staged.refused) == 1:
        return unreadable[0][1]
    return "; ".join(f"{p.name}: {e}" for p, e in unreadable) or "no files"


def _load(files: list[LoadedFile], names, parallel: int | None, adapting: Adapting) -> list[Adaptation]:
    """In parallel threads (each file has its own learner process: independent), run
    every file's cells then its adapter and conventions, and wait for all; what they adapted, by
    file. The longest files start first (their code's length as a guess of their time), so that
    the last one does not run alone at the end."""
    def load(loaded: LoadedFile) -> Adaptation:
        loaded.start(names)
        made = adapting.adapt(loaded, names, loaded.file)
        loaded.apply(made)
        return made

    parallel = min(len(files), available_cpus()) if parallel is None else parallel
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="course-sandbox")
    try:
        longest_first = sorted(files, key=lambda g: -sum(len(code) for _, code in g.submission.cells))
        loading = {g.index: pool.submit(load, g) for g in longest_first}
        return [loading[g.index].result() for g in files]
    finally:  # (on the way out of an error: files still loading end within their limits)
        pool.shutdown(wait=True, cancel_futures=True)


def _run(planned: Plan) -> dict[str, list[TestResult]]:
    """One pytest session over the planned sections' suites, each test in the learner
    process of its section's file; results by exercise id."""
    router = _Router(planned.owners)
    return run_suites(planned.suites, planned.to_run, router, _RoutedProxy(router), planned.features)


def _score(planned: Plan, results: dict[str, list[TestResult]]) -> list[dict]:
    """Each planned exercise as data (course.grading.scoring), in the course's order."""
    exercises = []
    for exercise_id in planned.exercise_ids:
        owner = planned.owners[exercise_id.split(".")[0]]
        name = EXERCISES[exercise_id].name
        if not_applicable(owner, exercise_id):
            exercises.append(scoring.not_applicable(exercise_id, not_applicable(owner, exercise_id)))
        elif name in owner.unrecognised:
            exercises.append(scoring.not_graded(exercise_id, "not_defined", owner.unrecognised[name]))
        elif name not in owner.defined:
            exercises.append(scoring.not_graded(exercise_id, "not_parsed", _unparsed_detail(name, owner))
                             if owner.syntax_error else scoring.not_graded(
                                 exercise_id, "not_defined",
                                 _missing_detail(name, owner.submission, owner.learner.outcomes)))
        else:
            exercises.append(scoring.scored(exercise_id, results.get(exercise_id, [])))
    return exercises


def _notes(files: list[LoadedFile], root: Path, unreadable, adapter_notes: list[dict], exercises: list[dict],
           planned: Plan) -> list[dict]:
    """The report's notes: each file's, the files not graded, the adapter's and conventions', the
    graded names that come from installed packages, the sections several files define."""
    notes = _file_notes(files, root)
    notes += [note("not_a_submission", f"cannot be graded: {e}", _relative(p, root)) for p, e in unreadable]
    notes += adapter_notes
    notes += _defined_elsewhere([e["id"] for e in exercises if e["score"] > 0], planned.owners, root)
    for section, owner in planned.owners.items():
        others = [g.file for g in planned.touched.get(section, []) if g is not owner]
        if others:
            why = ("its own file" if is_sections_own(owner.submission.path, section)
                   else "the file defining most of its names")
            where = owner.file
            notes.append(note("routing", f"{', '.join(others)} also define(s) {section} names, but {section} is "
                                         f"graded on {where} ({why}) only"))
    return notes


def _relative(path: Path, root: Path) -> str:
    """A file's name in the report: its path relative to the submission's root."""
    try:
        return Path(os.path.abspath(path)).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def _file_notes(files, root: Path) -> list[dict]:
    """What happened to each file's code: cells that raised, hung or crashed (at most MAX_NOTES),
    modules that do not parse, processes that could not start, names read as the code ran."""
    cells, others = [], []
    for loaded in files:
        where = loaded.file
        if loaded.syntax_error:
            others.append(note("unreadable", loaded.syntax_error, where, "module"))
        if loaded.unanalysed:
            others.append(note("analysis", f"the grader could not read which names your code defines "
                                           f"({loaded.unanalysed}); they were taken from your code as it ran", where))
        if loaded.failure:
            others.append(note("not_run", f"your code could not be run: {loaded.failure}", where))
        for outcome in loaded.learner.outcomes:
            if not outcome.error or (loaded.syntax_error and outcome.label == "module"):
                continue
            missing = _NO_MODULE.match(outcome.error) if outcome.raised == "ModuleNotFoundError" else None
            if missing:
                cells.append(note("module_missing", outcome.error, where, outcome.label, module=missing[1]))
            else:
                cells.append(note(f"cell_{outcome.kind or 'raised'}", outcome.error, where, outcome.label))
    if len(cells) > MAX_NOTES:
        cells = cells[:MAX_NOTES] + [note("truncated", f"... and {len(cells) - MAX_NOTES} more cells that raised or hung")]
    return cells + others


# (the learner's process says it: only a dotted name counts, and its top-level package is the module)
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)*'")


_WARM_UP = "def rope_inv_freq(d, base=10000.0):\n    raise NotImplementedError\n"


def warm_up(limits: Limits | None = None) -> None:
    """Pay the one-time costs before the first submission (a long-lived grader calls this once):
    start the fork server, run pytest and a hidden suite once, collect every suite (a broken one
    fails here, not in the gradings that happen to need it), then freeze the heap so the garbage
    collector (pytest runs it several times per session) no longer walks these objects."""
    with tempfile.TemporaryDirectory(prefix="course-warm-up-") as folder:
        path = Path(folder) / "warm_up.py"
        path.write_text(_WARM_UP)
        grade_files([path], only=["rope.rope_inv_freq"], limits=limits)
    check_suites(SECTIONS)
    gc.collect()
    gc.freeze()


def serve(limits: Limits, requests=sys.stdin, replies=sys.stdout, guard=None) -> str:
    """Grade requests until `requests` ends. A request is a JSON line {"id", "request": a
    GradeRequest's JSON}; each answer one JSON line {"id", "report", "grader_failed", "seconds"}. Used
    by course.nbgrader_bridge (one warm grader per kernel, "keep": its learner process is kept for the
    next request, see KeptLearners) and course.batch_worker (one per worker). `limits`: the
    server's, for a request that gives none of its own. `guard`
    (course.grading.integrity.CodeGuard) is checked after each learner: if the hidden suites or the
    course package changed, that learner's answer is an error with "refused" and serving stops:
    the reason is returned ("" when `requests` ended)."""
    warm = KeptLearners()
    try:
        return _serve(limits, requests, replies, warm, guard)
    finally:
        warm.close()


def _serve(limits: Limits, requests, replies, warm: KeptLearners, guard=None) -> str:
    from course.grading.integrity import GradingRefused

    for line in requests:
        if not line.strip():
            continue
        begin, request, refused = time.monotonic(), {}, ""
        try:
            request = json.loads(line)
            report, failed = grade(GradeRequest.from_json(request.get("request"), limits), warm=warm), False
        except Exception as err:  # noqa: BLE001 - the grader's own failure: report it, keep serving
            report = failed_report(f"grading failed: {type(err).__name__}: {err}")
            failed = True
        if guard is not None:
            try:
                guard.check()
            except GradingRefused as err:
                refused = str(err)
                report, failed = failed_report(refused), True
        answer = {"id": request.get("id") if isinstance(request, dict) else None, "report": report,
                  "grader_failed": failed, "seconds": round(time.monotonic() - begin, 3)}
        replies.write(json.dumps({**answer, "refused": refused} if refused else answer) + "\n")
        replies.flush()
        if refused:
            return refused
    return ""
