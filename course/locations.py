"""Where the course's own files are: the repository around the package and the hidden suites."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITES_ENV = "COURSE_GRADER_TESTS"


def suites_dir() -> Path:
    """The hidden suites: ``$COURSE_GRADER_TESTS``, else ``grader_tests/`` in the repository."""
    return Path(os.environ.get(SUITES_ENV, REPO / "grader_tests"))
