"""The one way hidden suites reach the learner's code: the `submission` fixture.

Under the grader (python -m course.grade) the fixture's value comes from the grader's
plugin. Run directly, ``pytest grader_tests/test_rope.py --submission FILE`` starts a
sandbox for FILE itself. Either way a suite sees a course.grading.remote.SubmissionProxy.
"""
import pytest

from course.grading.suite_runner import PLUGIN_NAME, ROBUSTNESS_MARKER, USES_MARKER


def pytest_addoption(parser):
    parser.addoption("--submission", help="notebook or .py file to test (when not run by the grader)")


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(id, weight=1): the graded exercise a test belongs to")
    config.addinivalue_line("markers", USES_MARKER)
    config.addinivalue_line("markers", ROBUSTNESS_MARKER)


@pytest.fixture(scope="session")
def submission(request):
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None:
        yield plugin.proxy
        return
    path = request.config.getoption("--submission")
    if not path:
        pytest.exit("run the hidden suites through `python -m course.grade`, or pass --submission FILE", 2)
    from course.grading.grader import opened
    from course.grading.remote import SubmissionProxy
    from course.sandbox.limits import Limits

    # As the grader opens it: a copy, a module imported (not run as __main__), conventions recognised.
    try:
        with opened(path, Limits()) as loaded:
            yield SubmissionProxy(loaded.learner, loaded.defined, loaded.bound)
    except ValueError as err:
        pytest.exit(str(err), 2)
