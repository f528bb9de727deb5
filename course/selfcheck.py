"""``from course.selfcheck import check``: the self-check every notebook imports (course.learner.selfcheck)."""
from course.learner.selfcheck import check  # noqa: F401 - the name notebooks import
