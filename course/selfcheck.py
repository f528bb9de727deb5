"""``from course.selfcheck import check``: the self-check every notebook imports (course.learner.selfcheck);
``not_while_grading``: the first line of a cell that only compares with an optional library;
``reveal``: a written question's model answer, once the learner's own is written (course.learner.reveal);
``use_reference``: the course's version of an unfinished function, for the demonstrations only;
``export_answers``: the last cell of a notebook with written questions (course.platforms.written)."""
import os

from course.learner.reference import use_reference  # noqa: F401 - the names notebooks import
from course.learner.reveal import reveal  # noqa: F401
from course.learner.selfcheck import check, not_while_grading  # noqa: F401
from course.learner.selfcheck import SANDBOX_ENV


def export_answers(out: str = "answers.pdf") -> None:
    """Write the learner's written answers, from the course's notebooks in this folder as saved, to
    `out` for Gradescope. Nothing while a notebook is graded (the grader's sandbox cannot read
    course.platforms, and nbgrader's copy has nothing to hand in)."""
    if not (os.environ.get(SANDBOX_ENV) or os.environ.get("NBGRADER_EXECUTION")):
        from course.platforms.written import export_answers as write

        write(out)
