"""Run hidden suites (pytest, in this trusted process) against a learner's sandbox."""
from __future__ import annotations

import contextlib
import io
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from course.exercises import EXERCISES
from course.grading.features import FEATURES, used_features
from course.grading.remote import SubmissionProxy
from course.locations import suites_dir
from course.sandbox.learner_process import LearnerError, LearnerProcess, SubmissionCrashed, SubmissionTimeout

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
    stage: str = "core"  # "core" (the mathematics) or "robustness" (stage(item))


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


MESSAGE_CHARS = 2000  # a check's message echoes learner data (a returned "key", a repr): it is cut here


def feedback_for(excinfo) -> str:
    """A failure as the learner should read it (never the grader's own traceback), at most
    MESSAGE_CHARS long, so that what a learner returns cannot swell the report."""
    text = _failure_text(excinfo.value)
    if len(text) <= MESSAGE_CHARS:
        return text
    return f"{text[:MESSAGE_CHARS]}... ({len(text) - MESSAGE_CHARS} more characters)"


def _failure_text(err) -> str:
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


ROBUSTNESS_MARKER = ("robustness: the test checks robustness (dtype, device, inputs left unchanged, half precision), "
                     "not the mathematics; course.exercises.ROBUSTNESS_SHARE of the exercise's points")


def stage(item) -> str:
    """The one rule: a test marked `robustness`, or one that uses argument_checks (a ValueError for bad
    arguments), is a robustness check; every other test checks the mathematics, the core."""
    robust = item.get_closest_marker("robustness") is not None or "argument_checks" in used_features(item)
    return "robustness" if robust else "core"


def skip_reason(excinfo) -> str:
    """Why a test skipped itself (pytest.skip(reason)), as the exercise feedback lists it."""
    value = getattr(excinfo, "value", None)
    return str(getattr(value, "msg", "") or value or "skipped").strip()


class SubmissionPlugin:
    """Provides the `submission` fixture's value, runs the tests of the exercises in `to_run`
    and collects results by exercise."""

    def __init__(self, learner: LearnerProcess, proxy: SubmissionProxy, to_run, not_applicable: dict[str, dict[str, str]]):
        self.learner, self.proxy, self.to_run = learner, proxy, set(to_run)
        self.not_applicable = not_applicable  # exercise id -> {feature: why tests using it are not run}
        self.results: dict[str, list[TestResult]] = defaultdict(list)

    def pytest_configure(self, config):
        config.addinivalue_line("markers", "exercise(id, weight=1): the graded exercise a test belongs to")
        config.addinivalue_line("markers", USES_MARKER)
        config.addinivalue_line("markers", ROBUSTNESS_MARKER)

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
            if marker.args[0] in self.to_run:
                kept.append(item)
        items[:] = kept

    def pytest_runtest_setup(self, item):
        exercise_id = item.get_closest_marker("exercise").args[0]
        self.learner.set_exercise(exercise_id)
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
            weight, kind = float(marker.kwargs.get("weight", 1)), stage(item)
            if report.skipped:
                result = TestResult(doc, False, weight, not_run=skip_reason(call.excinfo), stage=kind)
            elif call.excinfo is None:
                result = TestResult(doc, True, weight, stage=kind)
            else:
                result = TestResult(doc, False, weight, feedback_for(call.excinfo), stage=kind,
                                    **failure_facts(call.excinfo))
            self.results[marker.args[0]].append(result)


class _Registered:
    """Registers the plugin under PLUGIN_NAME so conftest.py can find it."""

    def __init__(self, plugin):
        self.plugin = plugin

    def pytest_configure(self, config):
        config.pluginmanager.register(self.plugin, PLUGIN_NAME)


# Plugins the hidden suites do not need; some of them run the garbage collector after every test.
UNUSED_PLUGINS = ("cacheprovider", "randomly", "logging", "faulthandler", "threadexception", "unraisableexception")


def run_suites(sections, to_run, learner: LearnerProcess, proxy: SubmissionProxy,
               not_applicable: dict[str, dict[str, str]] | None = None) -> dict[str, list[TestResult]]:
    """Run the tests of the exercises `to_run` in one pytest session over the suites of
    `sections`, in that order; results by exercise id. `not_applicable` maps an exercise
    id to {feature: reason}: its tests marked as using such a feature are not run (recorded with
    the reason)."""
    needed = {i.split(".")[0] for i in to_run}
    missing = [s for s in sections if s in needed and not suite_file(s).is_file()]
    if missing:
        raise SuiteError(f"hidden suite {suite_file(missing[0])} is missing")
    present = [str(suite_file(s)) for s in sections if suite_file(s).is_file()]
    plugin = SubmissionPlugin(learner, proxy, to_run, not_applicable or {})
    if present:  # (pytest given no file would collect its working directory)
        _run_pytest(present, plugin)
    return plugin.results


def check_suites(sections) -> None:
    """Collect the suites of `sections` without running any test: a broken one raises SuiteError
    now. A grading collects only the suites it needs, so a long-lived grader checks them all as it
    starts (it also imports them once)."""
    run_suites(sections, [], None, None)


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
