"""Grade one learner's submission: every file run in its own learner process, each section
routed to one of them, the hidden suites run here on copies of what the learner's code returns.
"""
from __future__ import annotations

import ast
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
from course.exercises import EXERCISES, SECTIONS, graded_names, section_exercises, where_to_look
from course.grading import scoring
from course.grading.adapters import Adapting, not_applicable
from course.grading.report import REPORT_VERSION, checked, failed_report, note
from course.grading.remote import SubmissionProxy
from course.grading.staging import Snapshot, snapshot
from course.grading.submission import Submission, UnreadableSubmission, read_submission, statically_defined
from course.grading.routing import Schedule, is_sections_own
from course.grading.suite_runner import SuiteError, TestResult, check_suites, run_suites
from course.sandbox.learner_process import LearnerError, Limits, Sandbox, SubmissionCrashed, SubmissionTimeout

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


_DEFINITION = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)


def _meant_for(graded, names) -> list[str]:
    """The sections a module that does not parse was meant for: its name's (06_rope.py) and those
    of the graded names its text defines. It is submitted work: graded 0 with the reason, not
    left out as if never submitted."""
    code = graded.submission.cells[0][1]
    defined = {names[n].split(".")[0] for n in _DEFINITION.findall(code) if n in names}
    return [s for s in SECTIONS if s in defined or is_sections_own(graded.submission.path, s)]


def _unparsed_detail(name: str, graded) -> str:
    return (f"`{name}` could not be graded: {graded.submission.path.name} does not parse ({graded.syntax_error}), "
            "so none of its code ran.")


def grade_file(path, only=None, limits: Limits | None = None) -> dict:
    """Grade a notebook or module; `only` restricts to exercise ids. Returns the report dict."""
    return grade_files([path], only=only, limits=limits)


_LIVE: dict = {}  # id -> sandbox of the submissions being graded (for close_all_sandboxes)
_LIVE_LOCK = threading.Lock()


def close_all_sandboxes() -> None:
    """End every learner process this grader has open, now (a grader being stopped calls this
    from its signal handler before exiting)."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for sandbox in live:
        try:
            sandbox.close()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


class WarmSandboxes:
    """Learner processes kept from one request to the next of the same client: a notebook kernel
    grading exercise after exercise (course.nbgrader_bridge sends its executed cells each time).

    A kept process has run a file's cells so far. A request whose cells continue them (the same
    file, the same other files beside it, the same limits) runs only the new cells there, then is
    graded in a snapshot of the process (Sandbox.snapshot: a fork, gone after grading), so every
    grading sees the process exactly as the cells alone left it, as a fresh process running them
    all would be. Anything else gets a fresh process; so does the next request after a grading
    that restarted the process or wrote in its working directory."""

    MAX_KEPT = 4

    @staticmethod
    def _drop(sandbox: Sandbox) -> None:
        with _LIVE_LOCK:
            _LIVE.pop(id(sandbox), None)
        sandbox.close()

    def __init__(self):
        self._kept: dict[tuple, Sandbox] = {}

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

    def take(self, submission: Submission, limits: Limits, root: Path, copies: list) -> tuple[Sandbox | None, tuple]:
        """(a kept process whose cells begin this submission's, or None; the key to give it back under)."""
        key = self.key(submission, limits, root, copies)
        sandbox = self._kept.pop(key, None)
        if sandbox is not None and (submission.cells[:len(sandbox.cells)] != sandbox.cells or not sandbox.ping()):
            self._drop(sandbox)
            sandbox = None
        return sandbox, key

    def give_back(self, key: tuple, sandbox: Sandbox, files_state) -> bool:
        """End the grading's snapshot; keep the process if it is as its cells left it (True)."""
        kept = files_state is not None and sandbox.release() and sandbox.files_state() == files_state
        if not kept:
            sandbox.close()
            return False
        old = self._kept.pop(key, None)
        if old is not None:
            self._drop(old)
        self._kept[key] = sandbox
        while len(self._kept) > self.MAX_KEPT:
            self._drop(self._kept.pop(next(iter(self._kept))))
        return True

    def close(self) -> None:
        for sandbox in self._kept.values():
            self._drop(sandbox)
        self._kept.clear()


class _Graded:
    """One file of a submission, its learner process and what it defines."""

    def __init__(self, index: int, submission: Submission, names: dict[str, str], limits: Limits, root: Path,
                 copies: list, warm: WarmSandboxes | None = None):
        self.index, self.submission = index, submission
        self.file = submission.identity(root)["file"]  # its name in the report: relative to the submission's root
        self.warm, self.warm_key, self.files_state = warm, None, None
        kept = None
        if warm is not None:
            kept, self.warm_key = warm.take(submission, limits, root, copies)
        # The learner's code runs in a copy of their files (course.grading.staging), as from its own file.
        self.sandbox = kept or Sandbox(submission.cells, limits, files=copies, module=submission.identity(root))
        self.kept = kept is not None
        with _LIVE_LOCK:
            _LIVE[id(self.sandbox)] = self.sandbox
        self.defined: dict[str, str] = {}
        self.bound: dict = {}  # names an adapter made, tested by reference (course.grading.adapters.Bound)
        self.static, self.unanalysed = _static_names(submission, names)  # graded names its text defines
        self.static_sections = {names[n].split(".")[0] for n in self.static}
        self.syntax_error = "" if self.static else _syntax_error(submission)
        self.present: set[str] = set(self.static)
        self.failure = ""  # the sandbox itself could not start

    def start(self, names) -> None:
        try:
            if self.kept:  # run only the cells it has not run yet
                self.sandbox.reset_clock()
                self.sandbox.extend(self.submission.cells[len(self.sandbox.cells):])
            else:
                self.sandbox.start()
            if self.warm is not None:  # grade in a copy of the process: it stays as the cells left it
                state = self.sandbox.files_state()
                if self.sandbox.snapshot():
                    self.files_state = state
            self.defined = self.sandbox.defined(names)
        except (SubmissionTimeout, SubmissionCrashed, LearnerError) as err:
            self.failure = f"{type(err).__name__}: {err}"
        self.present = set(self.defined) | self.static

    def finish(self) -> None:
        """Close the learner's process, or give it back to be kept."""
        with _LIVE_LOCK:
            _LIVE.pop(id(self.sandbox), None)
        if self.warm is not None:
            if self.warm.give_back(self.warm_key, self.sandbox, self.files_state):
                with _LIVE_LOCK:
                    _LIVE[id(self.sandbox)] = self.sandbox
        else:
            self.sandbox.close()

    def sections(self, names) -> set[str]:
        return {names[n].split(".")[0] for n in self.present}


class _RoutedSandbox:
    """Stands for several learner processes in one pytest session: each test is routed to the
    process of its exercise's section (SubmissionPlugin calls set_exercise before each test)."""

    def __init__(self, schedule: Schedule):
        self.owners = schedule.owners  # filled as sections become ready
        self.current: _Graded | None = None

    def set_exercise(self, exercise_id: str) -> None:
        self.current = self.owners[exercise_id.split(".")[0]]
        self.current.sandbox.set_exercise(exercise_id)


class _RoutedProxy:
    """The `submission` fixture over a _RoutedSandbox: the current section's SubmissionProxy."""

    def __init__(self, router: _RoutedSandbox):
        self._router = router
        self._proxies: dict[int, SubmissionProxy] = {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        graded = self._router.current
        if graded is None:
            raise AssertionError("no exercise is being graded")
        if graded.index not in self._proxies:
            self._proxies[graded.index] = SubmissionProxy(graded.sandbox, graded.defined, graded.bound)
        return getattr(self._proxies[graded.index], name)


def _likely_sections(files: list[_Graded]) -> set[str]:
    """The sections a submission visibly holds: those its files' text defines names of, and those
    whose own file (``06_rope*.ipynb``) it has. Others (names defined only as the cells run, or
    through a convention) are graded too, after a second collection (course.grading.suite_runner)."""
    return {s for g in files for s in g.static_sections} | {
        s for g in files for s in SECTIONS if is_sections_own(g.submission.path, s)}


def _load_all(files: list[_Graded], names, parallel: int, adapting: Adapting, schedule: Schedule) -> ThreadPoolExecutor:
    """In `parallel` threads, run every file's cells then its adapters, and tell the schedule
    (each file has its own learner process: independent). The longest files start first (their
    code's length as a guess of their time), so that the last one does not run alone at the end."""
    def load(graded: _Graded) -> None:
        try:
            graded.start(names)
            adapting.adapt(graded, names, graded.file)
        except BaseException as err:
            schedule.file_failed(graded.index, err)
            raise
        schedule.file_ready(graded.index)

    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="course-sandbox")
    for graded in sorted(files, key=lambda g: -sum(len(code) for _, code in g.submission.cells)):
        pool.submit(load, graded)
    return pool


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
        owner.sandbox.set_exercise(f"origin of {name}")
        target = {"__global__": name}
        try:
            kind = owner.sandbox.request({"op": "type_names", "target": target})
            if not (isinstance(kind, list) and kind and kind[0] in _DEFINITION_TYPES):
                continue
            module = owner.sandbox.request({"op": "getattr", "target": target, "attr": "__module__"})
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


def grade_files(paths, only=None, limits: Limits | None = None, parallel: int | None = None, adapter=None,
                warm: WarmSandboxes | None = None, beside=()) -> dict:
    """Grade one learner's submission made of one or more notebooks/modules, as one report.

    Each file runs in its own learner process (their cells do not share a namespace); each
    section is graded on one file: the section's own notebook if present (``06_rope*.ipynb``),
    else the file that defines most of its names (course.grading.routing). The hidden suites run
    in one pytest session (two if a section turns up only as the cells run), each section's as
    soon as its file is ready. A single file gives exactly ``grade_file``'s report. A folder
    among `paths` is the learner's own: its notebooks and modules are graded, and every file's
    process works in a copy of its visible files (helper modules, data); a file given alone is
    copied alone. `beside`: folders of the learner's whose visible files are copied too, without
    being graded (an nbgrader assignment folder: the notebook's helper modules and data).
    `adapter` is a .py file defining the course's names from the learner's (course.grading.adapters).
    `warm` keeps the learner processes for the client's next request (see WarmSandboxes).
    """
    limits = limits or Limits()
    with snapshot(paths, limits.file_mb, beside) as staged:  # the learner's files, read once, no link followed
        return _grade_snapshot(staged, only, limits, parallel, adapter, warm)


def _grade_snapshot(staged: Snapshot, only, limits: Limits, parallel: int | None, adapter,
                    warm: WarmSandboxes | None) -> dict:
    root, copies = staged.root, staged.copies
    names = graded_names()
    single = len(staged.graded) + len(staged.refused) == 1
    adapting = Adapting(adapter, conventions=limits.conventions)
    unreadable, submissions = [(path, f"{path} {why}") for path, why in staged.refused], []
    for path in staged.graded:
        try:
            submissions.append(read_submission(path, also_used=adapting.names_used()))
        except UnreadableSubmission as err:
            unreadable.append((path, str(err)))
    if not submissions:
        why = unreadable[0][1] if single else "; ".join(f"{p.name}: {e}" for p, e in unreadable) or "no files"
        return failed_report(why)
    files = [_Graded(i, s, names, limits, root, copies, warm) for i, s in enumerate(submissions)]
    parallel = max(1, min(len(files), available_cpus()) if parallel is None else parallel)
    schedule = Schedule(files, names, only)
    pool = None
    try:
        pool = _load_all(files, names, parallel, adapting, schedule)
        router = _RoutedSandbox(schedule)
        wanted = (sorted({EXERCISES[i].section for i in only if i in EXERCISES}, key=SECTIONS.index) if only
                  else SECTIONS)
        results = run_suites(wanted, router, _RoutedProxy(router), schedule, only=only,
                             not_applicable=schedule.not_applicable, likely=_likely_sections(files))
        pool.shutdown(wait=True)
        if schedule.error is not None:
            raise schedule.error
        if schedule.plan is None:
            raise SuiteError("the hidden suites' session ended before every section was graded")
        adapter_notes = adapting.notes()
        exercise_ids, owners, touched = schedule.plan.exercise_ids, schedule.plan.owners, schedule.plan.touched
        exercises = []
        for exercise_id in exercise_ids:
            owner = owners[exercise_id.split(".")[0]]
            name = EXERCISES[exercise_id].name
            if not_applicable(owner, exercise_id):
                exercises.append(scoring.not_applicable(exercise_id, not_applicable(owner, exercise_id)))
            elif name not in owner.defined:
                exercises.append(scoring.not_graded(exercise_id, "not_parsed", _unparsed_detail(name, owner))
                                 if owner.syntax_error else scoring.not_graded(
                                     exercise_id, "not_defined",
                                     _missing_detail(name, owner.submission, owner.sandbox.outcomes)))
            else:
                exercises.append(scoring.scored(exercise_id, results.get(exercise_id, [])))
        unparsed = {}  # section -> the module that does not parse meant for it, when no other file has it
        for graded in (g for g in files if g.syntax_error):
            for section in _meant_for(graded, names):
                if section not in owners:
                    unparsed.setdefault(section, graded)
        for section, graded in unparsed.items():
            exercises += [scoring.not_graded(e.id, "not_parsed", _unparsed_detail(e.name, graded))
                          for e in section_exercises(section) if not only or e.id in only]
        order = list(EXERCISES)
        exercises.sort(key=lambda e: order.index(e["id"]))
        owners = {**owners, **unparsed}
        notes = _file_notes(files, root)
        notes += [note("not_a_submission", f"cannot be graded: {e}", _relative(p, root)) for p, e in unreadable]
        notes += adapter_notes
        notes += _defined_elsewhere([e["id"] for e in exercises if e["score"] > 0], owners, root)
        for section, owner in owners.items():
            others = [g.file for g in touched.get(section, []) if g is not owner]
            if others:
                why = ("its own file" if is_sections_own(owner.submission.path, section)
                       else "the file defining most of its names")
                where = owner.file
                notes.append(note("routing", f"{', '.join(others)} also define(s) {section} names, but {section} is "
                                             f"graded on {where} ({why}) only"))
    finally:
        if pool is not None:  # (on the way out of an error: files still loading end within their limits)
            pool.shutdown(wait=True, cancel_futures=True)
        for graded in files:
            graded.finish()
    return checked({
        "version": REPORT_VERSION,
        "score": round(sum(e["score"] for e in exercises), 2),
        "max_score": float(sum(e["max_score"] for e in exercises)),
        "exercises": exercises,
        "notes": notes,
        "files": {g.file: {
            "sections": [s for s, o in owners.items() if o is g],
            "adapted_by": [a.by for a in getattr(g, "adaptations", [])]} for g in files},
    })


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
    for graded in files:
        where = graded.file
        if graded.syntax_error:
            others.append(note("unreadable", graded.syntax_error, where, "module"))
        if graded.unanalysed:
            others.append(note("analysis", f"the grader could not read which names your code defines "
                                           f"({graded.unanalysed}); they were taken from your code as it ran", where))
        if graded.failure:
            others.append(note("not_run", f"your code could not be run: {graded.failure}", where))
        for outcome in graded.sandbox.outcomes:
            if not outcome.error or (graded.syntax_error and outcome.label == "module"):
                continue
            missing = _NO_MODULE.match(outcome.error) if outcome.raised == "ModuleNotFoundError" else None
            if missing:
                cells.append(note("module_missing", outcome.error, where, outcome.label, module=missing[1]))
            else:
                cells.append(note(f"cell_{outcome.kind or 'raised'}", outcome.error, where, outcome.label))
    if len(cells) > MAX_NOTES:
        cells = cells[:MAX_NOTES] + [note("truncated", f"... and {len(cells) - MAX_NOTES} more cells that raised or hung")]
    return cells + others


_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


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
    """Grade requests until `requests` ends. A request is a JSON line {"id"?, "path" or "paths",
    "only"?, "keep"?, "beside"?}; each answer one JSON line {"id", "report", "grader_failed", "seconds"}. Used by
    course.nbgrader_bridge (one warm grader per kernel, "keep": its learner process is kept for the
    next request, see WarmSandboxes) and course.batch_worker (one per worker). `guard`
    (course.grading.integrity.CodeGuard) is checked after each learner: if the hidden suites or the
    course package changed, that learner's answer is an error with "refused" and serving stops:
    the reason is returned ("" when `requests` ended)."""
    warm = WarmSandboxes()
    try:
        return _serve(limits, requests, replies, warm, guard)
    finally:
        warm.close()


def _serve(limits: Limits, requests, replies, warm: WarmSandboxes, guard=None) -> str:
    from course.grading.integrity import GradingRefused

    for line in requests:
        if not line.strip():
            continue
        begin, request, refused = time.monotonic(), {}, ""
        try:
            request = json.loads(line)
            paths = request["paths"] if "paths" in request else [request["path"]]
            report, failed = grade_files(paths, only=request.get("only"), limits=limits,
                                         warm=warm if request.get("keep") else None,
                                         beside=request.get("beside") or ()), False
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
