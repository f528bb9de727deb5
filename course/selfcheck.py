"""``from course.selfcheck import check``: the self-check every notebook imports (course.learner.selfcheck);
``not_while_grading``: the first line of a cell that only compares with an optional library."""
from course.learner.selfcheck import check, not_while_grading  # noqa: F401 - the names notebooks import
