"""One run on Gradescope: grade /autograder/submission, write /autograder/results/results.json."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from course.cores import available_cpus
from course.exercises import EXERCISES, NOTEBOOKS, SECTIONS, graded_names, section_exercises
from course.files import write_atomic
from course.grading.scoring import not_graded
from course.platforms.gradescope.config import Config, section_label, test_name, test_number
from course.platforms.gradescope.results import (exercise_test, report_data, report_lines, results_document,
                                                 schema_errors)


VISIBLE_HELPER = "__course_gradescope_visible_checks"
VISIBLE_SOURCE = f'''
def {VISIBLE_HELPER}(target):
    from course.learner.selfcheck import run_checks
    return [[o.title, bool(o.passed), str(o.message)[:1500]] for o in run_checks(target, globals())]
'''
STARTUP_SECONDS = 120.0  # run_autograder's start to this run's: seconds under load, never minutes


class Run:
    """One run of the autograder: what is known so far, written once as results.json (by the
    grading thread when it finishes, or by the watchdog when the time limit comes first)."""

    def __init__(self, root: Path, config: Config, problem: str = "", started: float | None = None):
        self.root, self.config, self.problem = root, config, problem
        # time.monotonic() of the run's start: `started` (wall-clock epoch, run_autograder's) if given;
        # a wall clock that jumped meanwhile must not use up the learner's time: STARTUP_SECONDS at most
        since = min(max(0.0, time.time() - started), STARTUP_SECONDS) if started is not None else 0.0
        self.begin = time.monotonic() - since
        self.deadline = self.begin + config.time_limit
        self.out = root / "results" / "results.json"
        self.files: list[str] = []          # the learner's files, relative to the submission folder
        self.others: list[str] = []         # other files they uploaded
        self.report: dict | None = None
        self.visible: dict[str, dict] = {}  # section -> {"file", "present", "checks": [[exercise, title, passed, message]]}
        self.present: set[str] = set()      # sections whose names the submission defines
        self.console = _own_stdout()        # the watchdog's messages: not captured by the suites' pytest session
        self.visible_problem: dict[str, str] = {}  # section -> why its visible checks did not run
        self._lock = threading.Lock()
        self._written = False

    # -- the document --------------------------------------------------------------
    def results(self, stopped: str = "", failure: str = "") -> dict:
        config = self.config
        by_id = {e["id"]: e for e in (self.report or {}).get("exercises", [])}
        lines = [self.problem] if self.problem else []
        if failure:
            lines.append(f"The autograder failed while grading ({failure}). This is a problem of the grader; "
                         "your instructor can see the details.")
        if stopped:
            lines.append(stopped)
        if self.report is None and not self.files and not failure and not stopped:
            found = f" (found: {', '.join(self.others[:10])})" if self.others else ""
            lines.append("No notebook (.ipynb) or Python module (.py) was found in your submission"
                         f"{found}. Upload the notebooks themselves, e.g. {NOTEBOOKS[config.sections[0]]}.ipynb.")
        elif self.files:
            others = f" (other files, not graded: {', '.join(self.others[:10])})" if self.others else ""
            lines.append(f"Submitted: {', '.join(self.files)}{others}.")
        if self.report is not None:
            lines += report_lines(self.report)
            missing = [s for s in config.sections if s not in self.present]
            if missing and not self.report.get("error"):
                lines.append("Not found in your submission: " + "; ".join(
                    f"{section_label(s)}, which defines {', '.join(e.name for e in section_exercises(s))}"
                    for s in missing) + ".")
        if config.hidden_visibility != "visible":
            when = {"hidden": "are not shown", "after_due_date": "are shown after the due date",
                    "after_published": "are shown when the grades are published"}[config.hidden_visibility]
            lines.append(f"The graded tests (one per exercise, {config.points:g} points) {when}"
                         + ("; the visible checks are those check() runs in your notebooks." if config.visible_checks
                            else "."))
        if stopped:
            why = f"the autograder's time limit ({config.time_limit:g} s) came first"
        elif failure:
            why = "the autograder failed"
        elif self.report is not None:
            why = self.report.get("error") or "the grader did not report it"
        elif self.files:
            why = "grading did not finish"
        else:
            why = "your submission has no notebook (.ipynb) or Python module (.py)"
        tests = []
        for section in config.sections:
            if config.visible_checks:
                tests.append(self._visible_test(section, why if self.report is None or self.report.get("error")
                                                else self.visible_problem.get(section, "no time was left for them")))
            for exercise in section_exercises(section):
                entry = by_id.get(exercise.id) or not_graded(exercise.id, "not_graded", f"Not graded: {why}.")
                tests.append(exercise_test(entry, test_number(exercise.id), name=test_name(exercise.id),
                                           visibility=config.hidden_visibility))
        score = round(sum(t["score"] for t in tests if "score" in t), 2)
        extra = {"course_version": config.course_version, "sections": config.sections, "files": self.files,
                 "stopped": stopped or None, "failure": failure or None, "report": report_data(self.report)}
        return results_document(score, time.monotonic() - self.begin, "\n".join(lines), tests,
                                output_format="text", test_output_format="text", test_name_format="text",
                                extra_data=extra)

    def _visible_test(self, section: str, not_run: str) -> dict:
        number = f"{SECTIONS.index(section) + 1}.0"
        name = f"{section}: visible checks (check(\"{section}\") in {NOTEBOOKS[section]}.ipynb)"
        found = self.visible.get(section)
        if found is None:
            status, output = "failed", f"Not run: {not_run}."
        elif not found["present"]:
            status = "failed"
            output = (f"Your submission defines none of {', '.join(e.name for e in section_exercises(section))}: "
                      f"upload {NOTEBOOKS[section]}.ipynb (or a module defining them).")
        else:
            rows, failed = [], 0
            for exercise_id, title, passed, message in found["checks"]:
                name_ = exercise_id.split(".", 1)[1]
                rows.append(f"{'pass' if passed else 'FAIL'}  {name_}: {title}")
                if not passed:
                    failed += 1
                    rows += [f"      {line}" for line in message.splitlines()]
                    rows.append(f"      see {NOTEBOOKS[section]}, section {EXERCISES[exercise_id].where}")
            total = len(found["checks"])
            status = "passed" if total and not failed else "failed"
            rows.append(f"{total - failed} of {total} checks pass (run on {found['file']}).")
            output = "\n".join(rows)
        return {"name": name, "number": number, "status": status, "output": output, "visibility": "visible"}

    # -- writing ---------------------------------------------------------------------
    def write(self, document: dict) -> bool:
        """Write results.json unless it has been written; True if this call wrote it."""
        with self._lock:
            if self._written:
                return False
            try:
                problems = schema_errors(document)
            except Exception as err:  # noqa: BLE001 - no jsonschema, no schema: write it unchecked
                problems = []
                print(f"results.json not checked against the schema: {type(err).__name__}: {err}")
            if problems:
                print("results.json breaks Gradescope's format (a bug of the grader):", *problems, sep="\n  ")
                document = results_document(document.get("score", 0.0) if isinstance(document.get("score"), (int, float))
                                            else 0.0, time.monotonic() - self.begin,
                                            "The autograder produced malformed results; only the score is kept.", [],
                                            output_format="text")
            write_atomic(self.out, json.dumps(document, indent=1) + "\n")
            self._written = True
            return True

    def on_time_limit(self) -> None:
        """The watchdog: write what is known, stop every learner process, leave."""
        stopped = (f"Grading stopped after {self.config.time_limit:g} s, the autograder's time limit: "
                   + ("the visible checks did not finish." if self.report is not None
                      else "exercises not graded by then score 0. Look for code that runs for a long time "
                           "(a loop that never ends, a large experiment) in your notebooks."))
        if self.write(self.results(stopped=stopped)):
            print(f"time limit ({self.config.time_limit:g} s) reached: results written, stopping", file=self.console,
                  flush=True)
            _close_everything()
            os._exit(0)


def _own_stdout():
    """A copy of this process's standard output: the hidden suites' pytest session, which may run
    while the watchdog fires, redirects the original (sys.stdout and file descriptor 1)."""
    try:
        return os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    except (AttributeError, OSError, ValueError):
        return sys.stdout


def _close_everything() -> None:
    try:
        from course.grading.grader import close_all_learners

        close_all_learners()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


def _protect(root: Path) -> None:
    """As root (Gradescope), learners run under user ids of their own: keep them out of the hidden
    suites and the results folder (Landlock, where the kernel has it, keeps them out anyway)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    suites = root / "source" / "grader_tests"
    for path in [suites, *suites.rglob("*")]:
        try:
            path.chmod(path.stat().st_mode & 0o700)
        except OSError:
            pass
    try:
        (root / "results").chmod(0o755)
    except OSError:
        pass


def visible_checks_after_grading(run: Run):
    """What grade() calls once the hidden suites have run: each section's visible checks (what
    check() does in the notebook), in the learner process of the file that section was graded on,
    while it is still alive. Informative, never scored; whatever goes wrong is said, never raised."""
    def after(owners: dict) -> None:
        by_file: dict[int, tuple] = {}
        for section, loaded in owners.items():
            if section in run.config.sections:
                by_file.setdefault(id(loaded), (loaded, []))[1].append(section)
        for loaded, sections in by_file.values():
            if run.deadline - time.monotonic() < 10.0:
                return
            try:
                _file_visible_checks(run, loaded, sections)
            except Exception as err:  # noqa: BLE001 - the grades stand without them
                traceback.print_exc()
                for section in sections:
                    run.visible_problem.setdefault(section, f"they could not be run ({type(err).__name__})")
    return after


def _file_visible_checks(run: Run, loaded, sections: list[str]) -> None:
    from course.grading.remote import SubmissionProxy
    from course.sandbox.learner_process import LearnerError, SubmissionCrashed, SubmissionTimeout

    learner, defined = loaded.learner, loaded.defined
    try:
        if loaded.failure:
            raise SubmissionCrashed(loaded.failure)
        proxy = SubmissionProxy(learner, defined)
        learner.set_exercise("gradescope: visible checks")
        helper = proxy.define(VISIBLE_HELPER, VISIBLE_SOURCE, label="check")
        for section in sections:
            present = any(e.name in defined for e in section_exercises(section))
            if present:
                run.present.add(section)
            checks = []
            for exercise in section_exercises(section) if present else []:
                learner.set_exercise(f"gradescope: {exercise.id}")
                try:
                    rows = helper(exercise.id)
                    if not (isinstance(rows, list) and len(rows) <= 100 and all(
                            isinstance(r, list) and len(r) == 3 and isinstance(r[0], str)
                            and isinstance(r[1], bool) and isinstance(r[2], str) for r in rows)):
                        raise SubmissionCrashed("its answer was not a list of checks")
                    checks += [[exercise.id, title[:200], passed, message[:1500]] for title, passed, message in rows]
                except (LearnerError, SubmissionTimeout, SubmissionCrashed) as err:
                    checks.append([exercise.id, "(the visible checks)", False, f"could not be run: {err}"[:1500]])
            run.visible[section] = {"file": loaded.file, "present": present, "checks": checks}
    except (LearnerError, SubmissionTimeout, SubmissionCrashed) as err:
        print(f"visible checks of {loaded.file} not run: {type(err).__name__}: {err}")
        for section in sections:
            run.visible_problem.setdefault(section, f"your code could not be run for them ({err})"[:500])


def _static_sections(paths: list[Path]) -> set[str]:
    """Sections whose names the files define at top level (when the visible checks did not look)."""
    from course.grading.submission import read_submission, statically_defined

    names, found = graded_names(), set()
    for path in paths:
        try:
            found |= {names[n].split(".")[0] for n in statically_defined(read_submission(path), names)}
        except Exception:  # noqa: BLE001 - unreadable: the report says so
            pass
    return found


def run(root: Path, started: float | None = None, allow_unconfined: bool = False) -> int:
    """Grade REPO/submission into REPO/results/results.json (Gradescope's layout under REPO).
    `started`: when run_autograder started (epoch seconds); the time limit counts from then.
    Refuses (results.json says why) where the learner's processes would not be confined, unless
    `allow_unconfined`, and when the hidden suites or the course package changed while grading."""
    problem = ""
    try:
        config = Config.load(root / "source")
    except Exception as err:  # noqa: BLE001 - grade with the defaults rather than not at all
        config, problem = Config(), f"(The autograder's configuration could not be read: {err}; all sections are graded.)"
    state = Run(root, config, problem, started)
    (root / "results").mkdir(parents=True, exist_ok=True)
    watchdog = threading.Timer(max(0.0, state.deadline - time.monotonic()), state.on_time_limit)
    watchdog.daemon = True
    watchdog.start()
    try:
        _protect(root)
        from course.grading.submission import graded_files, visible

        submission = root / "submission"
        paths = [p for p in graded_files([submission]) if p.is_file()] if submission.is_dir() else []
        state.files = [p.relative_to(submission).as_posix() for p in paths]
        if submission.is_dir():
            state.others = sorted(p.relative_to(submission).as_posix() for p in submission.rglob("*")
                                  if p.is_file() and all(visible(part) for part in p.relative_to(submission).parts)
                                  and p not in paths)
        print(f"submission: {state.files or 'no notebook or module'}; other files: {state.others[:20]}")
        if paths:
            from course.sandbox.fork_client import start_in_background

            start_in_background()  # torch loads in the fork server while this process imports the grader
            from course.grading.grader import grade
            from course.grading.integrity import CodeGuard, require_confined
            from course.grading.request import GradeRequest

            print(f"grader: {Path(sys.modules[grade.__module__].__file__).parent}")
            limits = config.grading_limits()
            guard = CodeGuard()
            if not allow_unconfined:
                require_confined(limits)
            only = tuple(config.exercise_ids) if config.exercise_ids else None
            after = visible_checks_after_grading(state) if config.visible_checks else None
            report = grade(GradeRequest((str(submission),), only=only, limits=limits), parallel=available_cpus(),
                           after=after)
            guard.check()
            state.report = report
            print(f"graded in {time.monotonic() - state.begin:.1f} s: {report['score']:g} / {report['max_score']:g}"
                  + (f"; error: {report['error']}" if report.get("error") else ""))
            state.present |= {s for s in _static_sections(paths) if s not in state.visible}
        state.write(state.results())
    except BaseException as err:  # noqa: BLE001 - whatever breaks, Gradescope gets a results.json
        traceback.print_exc()
        state.write(state.results(failure=f"{type(err).__name__}: {err}"[:500]))
    finally:
        watchdog.cancel()
    if state.report is not None and not state.report.get("error"):  # for the instructor: what confined the learner's processes
        try:
            from course.sandbox.learner_process import isolation_status

            print(f"isolation: {isolation_status()}")
        except Exception as err:  # noqa: BLE001
            print(f"isolation status unknown: {err}")
    print(f"results written in {time.monotonic() - state.begin:.1f} s")
    return 0
