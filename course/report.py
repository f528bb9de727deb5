"""``python -m course.report OUT_DIR``: what to re-teach, from a graded class (course.platforms.class_report)."""
import sys

from course.platforms.class_report import main

if __name__ == "__main__":
    sys.exit(main())
