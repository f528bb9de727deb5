"""Run hidden suites (pytest, in this trusted process) against a learner's sandbox."""
from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from course.exercises import EXERCISES
from course.grading.features import FEATURES, used_features
from course.grading.remote import SubmissionProxy
from course.locations import suites_dir
from course.sandbox.learner_process import LearnerError, Sandbox, SubmissionCrashed, SubmissionTimeout

PLUGIN_NAME = "course-submission"


class SuiteError(Exception):
    """The hidden suites themselves are broken or missing (not the learner's fault)."""


def suite_file(section: str) -> Path:
    return suites_dir() / f"test_{section}.py"


@dataclass
class TestResult:
    title: str
    passed: bool
    weight: float
    message: str = ""
    not_run: str = ""  # why the test did not run (pytest.skip): neither passed nor failed, not weighed
    mistake: str | None = None  # the key of the known mistake the failure recognised (course.grading.mistakes)
    raised: str | None = None   # the type of the exception the learner's code raised, if that is why it failed
    halted: str | None = None   # "hung" or "crashed": the learner's process had to be stopped


def failure_facts(excinfo) -> dict:
    """What a failure says as data: the mistake it recognised, what the learner's code raised,
    whether their process hung or crashed."""
    err = excinfo.value
    if isinstance(err, LearnerError):
        return {"raised": err.learner_type}
    if isinstance(err, SubmissionTimeout):
        return {"halted": "hung"}
    if isinstance(err, SubmissionCrashed):
        return {"halted": "crashed"}
    if isinstance(err, pytest.fail.Exception) and "DID NOT RAISE" in str(err):
        return {"mistake": "no-value-error"}
    return {"mistake": getattr(err, "mistake", None)} if isinstance(err, AssertionError) else {}


def feedback_for(excinfo) -> str:
    """A failure as the learner should read it: never the grader's own traceback."""
    err = excinfo.value
    if isinstance(err, LearnerError):
        text = f"{err.call} raised {err.learner_type}: {err}" if err.call else f"{err.learner_type}: {err}"
        if err.learner_traceback:
            text += "\n" + "\n".join("    " + line for line in err.learner_traceback.splitlines())
        return text
    if isinstance(err, (AssertionError, SubmissionTimeout, SubmissionCrashed)):
        return str(err)
    if isinstance(err, pytest.fail.Exception):
        return str(err).replace("DID NOT RAISE", "expected an error, but nothing was raised:")
    return f"what your code returned could not be checked ({type(err).__name__}: {err})"


USES_MARKER = ("uses(*features, when=None): features of course.grading.features the test relies on "
               "(when={param: value} limits it to those parametrisations)")


def skip_reason(excinfo) -> str:
    """Why a test skipped itself (pytest.skip(reason)), as the exercise feedback lists it."""
    value = getattr(excinfo, "value", None)
    return str(getattr(value, "msg", "") or value or "skipped").strip()


class SubmissionPlugin:
    """Provides the `submission` fixture's value, runs the tests of each section the schedule
    yields, and collects results by exercise."""

    def __init__(self, sandbox: Sandbox, proxy: SubmissionProxy, schedule, only: set[str] | None = None,
                 not_applicable: dict[str, dict[str, str]] | None = None):
        self.sandbox, self.proxy, self.schedule, self.only = sandbox, proxy, schedule, only
        # exercise id -> {feature: why tests using it are not run} (the caller may fill it later)
        self.not_applicable = {} if not_applicable is None else not_applicable
        self.results: dict[str, list[TestResult]] = defaultdict(list)
        self.missing: set[str] = set()  # sections without a suite file: an error only if one is needed
        self.missing_needed = ""
        self.collected: set[str] = set()  # sections whose suite the current session collected
        self.deferred: tuple[str, list[str]] | None = None  # ready, but its suite is not collected

    def collected_sections(self):
        """(section, exercise ids) as the schedule yields those with tests to run, while the current
        session has their suite; at the first one it has not, keep it for the next session and stop."""
        pending, self.deferred = [self.deferred] if self.deferred else [], None
        for section, exercise_ids in itertools.chain(pending, self.schedule):
            if not exercise_ids:
                continue
            if section in self.missing:
                self.missing_needed = section
                return
            if section not in self.collected:
                self.deferred = (section, exercise_ids)
                return
            yield section, exercise_ids

    def pytest_configure(self, config):
        config.addinivalue_line("markers", "exercise(id, weight=1): the graded exercise a test belongs to")
        config.addinivalue_line("markers", USES_MARKER)

    def pytest_collection_modifyitems(self, session, config, items):
        kept = []
        for item in items:
            marker = item.get_closest_marker("exercise")
            if marker is None or marker.args[0] not in EXERCISES:
                raise SuiteError(f"{item.nodeid}: every hidden test needs @pytest.mark.exercise(<known id>)")
            unknown = used_features(item) - set(FEATURES)
            if unknown:
                raise SuiteError(f"{item.nodeid}: unknown feature(s) in @pytest.mark.uses: "
                                 f"{', '.join(sorted(unknown))}")
            if self.only is None or marker.args[0] in self.only:
                kept.append(item)
        items[:] = kept

    def pytest_runtestloop(self, session):
        """pytest's own loop, over the items of each section as the schedule makes it ready."""
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        for section, exercise_ids in self.collected_sections():
            items = [i for i in session.items if i.get_closest_marker("exercise").args[0] in exercise_ids]
            for n, item in enumerate(items):
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=items[n + 1] if n + 1 < len(items) else None)
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
        return True

    def pytest_runtest_setup(self, item):
        exercise_id = item.get_closest_marker("exercise").args[0]
        self.sandbox.set_exercise(exercise_id)
        # Decided here, from the adapter's declaration and the test's markers only.
        cannot = self.not_applicable.get(exercise_id, {})
        reasons = [cannot[f] for f in sorted(used_features(item)) if f in cannot]
        if reasons:
            pytest.skip(reasons[0])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and (report.failed or report.skipped)):
            marker = item.get_closest_marker("exercise")
            doc = (item.function.__doc__ or item.name).strip().splitlines()[0]
            weight = float(marker.kwargs.get("weight", 1))
            if report.skipped:
                result = TestResult(doc, False, weight, not_run=skip_reason(call.excinfo))
            elif call.excinfo is None:
                result = TestResult(doc, True, weight)
            else:
                result = TestResult(doc, False, weight, feedback_for(call.excinfo), **failure_facts(call.excinfo))
            self.results[marker.args[0]].append(result)


class _Registered:
    """Registers the plugin under PLUGIN_NAME so conftest.py can find it."""

    def __init__(self, plugin):
        self.plugin = plugin

    def pytest_configure(self, config):
        config.pluginmanager.register(self.plugin, PLUGIN_NAME)


# Plugins the hidden suites do not need; some of them run the garbage collector after every test.
UNUSED_PLUGINS = ("cacheprovider", "randomly", "logging", "faulthandler", "threadexception", "unraisableexception")


def run_suites(sections, sandbox: Sandbox, proxy: SubmissionProxy, schedule, only=None,
               not_applicable: dict[str, dict[str, str]] | None = None, likely=None) -> dict[str, list[TestResult]]:
    """Run, section after section as `schedule` yields (section, exercise ids) pairs, those
    exercises' tests from the suites of `sections`; results by exercise id. The schedule may block
    until a section is ready (course.grading.routing). `not_applicable` maps an exercise id to
    {feature: reason}: its tests marked as using such a feature are not run (recorded with the
    reason); it may be filled as the schedule goes.

    Collecting a suite costs more than running a section's tests, so the first pytest session
    collects only the `likely` sections (those the learner's files visibly define; all if None).
    If the schedule then yields another section, a second session collects every suite and
    carries on from that section, so the sections still run in the schedule's order."""
    plugin = SubmissionPlugin(sandbox, proxy, iter(schedule), set(only) if only else None, not_applicable)
    present = [s for s in sections if suite_file(s).is_file()]
    plugin.missing = set(sections) - set(present)
    first = [s for s in present if likely is None or s in likely]
    for group in (first, present):
        plugin.collected = set(group)
        if group:
            _run_pytest([str(suite_file(s)) for s in group], plugin)
        else:  # (pytest given no file would collect its working directory)
            for _ in plugin.collected_sections():
                pass
        if plugin.deferred is None:
            break
    if plugin.missing_needed:
        raise SuiteError(f"hidden suite {suite_file(plugin.missing_needed)} is missing")
    return plugin.results


def check_suites(sections) -> None:
    """Collect the suites of `sections` without running any test: a broken one raises SuiteError
    now. A grading collects only the suites it needs, so a long-lived grader checks them all as it
    starts (it also imports them once)."""
    run_suites(sections, None, None, iter(()))


@contextlib.contextmanager
def _without_user_options():
    """Options a user's environment gives pytest (-x, plugins) are not the hidden suites'."""
    saved = {name: os.environ.pop(name) for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS") if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _run_pytest(files: list[str], plugin: SubmissionPlugin) -> None:
    # --tb=native: a failing test's traceback as Python formats it. pytest's own format parses the
    # source of every frame (0.06 s a test: 0.7-1.3 s for an unfinished notebook, 80% of its
    # grading); the feedback never shows it (feedback_for), only a broken suite's error does.
    args = [*files, "-q", "--assert=plain", "--tb=native", "-o", "addopts=", "--import-mode=importlib",
            "--rootdir", str(suites_dir()), "-W", "ignore"]
    for unused in UNUSED_PLUGINS:
        args += ["-p", f"no:{unused}"]
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _without_user_options():
        code = pytest.main(args, plugins=[_Registered(plugin)])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SuiteError(f"the hidden suites could not run (pytest exit {int(code)}):\n{log.getvalue()[-3000:]}")
