"""``python -m course.workspace``: prepare the learner's notebooks in workspace/ (course.learner.workspace)."""
import sys

from course.learner.workspace import main

if __name__ == "__main__":
    sys.exit(main())
