"""What course.build records about the lesson notebooks for the other parts: the tag and
fingerprint of demonstration cells (which the grader may leave out), every demonstration as a
kernel runs it, and the written questions' model answers (the self-study reveal)."""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path


# course.build tags every code cell of a lesson notebook that is not setup, solution or grade cell
# (prose's timings, figures, experiments) with this, and records its source's fingerprint in the
# cell's metadata (DEMO_KEY): the grader may leave such a cell out, unedited, when nothing that
# grading runs uses what it defines (course.grading.submission).
DEMO_TAG = "demo"
DEMO_KEY = "course_demo"


def demo_fingerprint(source: str) -> str:
    """What DEMO_KEY holds for a demonstration cell whose source is `source`."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


# Every lesson demonstration as a kernel runs it (course.build writes it; the nbgrader bridge,
# which sees a kernel's executed cells without their notebook's metadata, recognises them by it).
DEMONSTRATIONS_FILE = Path(__file__).with_name("demonstrations.json")

# The written questions' model answers by id, for the self-study reveal (course.learner.reveal);
# course.build writes it from the source notebooks' manual cells.
MODEL_ANSWERS_FILE = Path(__file__).with_name("model_answers.json")

# The written questions in the course's order: id, notebook, points and prompt (no model answer, so
# learners keep it when an instructor removes MODEL_ANSWERS_FILE); course.build writes it, the
# written answers' PDF (course.platforms.written) reads it.
WRITTEN_QUESTIONS_FILE = Path(__file__).with_name("written_questions.json")


@functools.cache
def lesson_demonstrations() -> frozenset[str]:
    """Fingerprints of the lesson's demonstration cells, each as the grader runs the code a kernel
    ran for it (``demo_fingerprint(to_python(IPython's transform_cell(source)))``)."""
    try:
        return frozenset(json.loads(DEMONSTRATIONS_FILE.read_text()))
    except (OSError, ValueError):
        return frozenset()  # (then every cell runs)
