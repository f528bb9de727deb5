"""``from course.selfcheck import check``: the self-check every notebook imports (course.learner.selfcheck);
``not_while_grading``: the first line of a cell that only compares with an optional library;
``reveal``: a written question's model answer, once the learner's own is written (course.learner.reveal);
``use_reference``: the course's version of an unfinished function, for the demonstrations only."""
from course.learner.reference import use_reference  # noqa: F401 - the names notebooks import
from course.learner.reveal import reveal  # noqa: F401
from course.learner.selfcheck import check, not_while_grading  # noqa: F401
