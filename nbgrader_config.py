"""nbgrader configuration for the course (see ../shared/NBGRADER_NOTES.md and README)."""
import os

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "positional-encodings"
c.CourseDirectory.source_directory = "source_notebooks"
# The exchange lives where the instructor says; tests point it at a temporary folder.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
c.Exchange.path_includes_course = True
# A hidden test cell runs the course grader in its own process (a few seconds).
c.ExecutePreprocessor.timeout = 180
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
