"""``python -m course.batch SUBMISSIONS --out OUT``: grade a class (course.platforms.batch)."""
import sys

from course.platforms.batch import main

if __name__ == "__main__":
    sys.exit(main())
