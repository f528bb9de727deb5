"""``python -m course.build [--check]``: fill the notebooks' solution and grade cells (course.authoring.build)."""
import sys

from course.authoring.build import main

if __name__ == "__main__":
    sys.exit(main())
