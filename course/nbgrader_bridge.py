"""``course.nbgrader_bridge.grade_exercise``: what nbgrader's hidden test cells call, in released
notebooks and gradebooks alike (course.platforms.nbgrader_bridge)."""
from course.platforms.nbgrader_bridge import grade_exercise  # noqa: F401 - the name grade cells call
