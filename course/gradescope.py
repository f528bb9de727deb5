"""``python -m course.gradescope build --out autograder.zip``: Gradescope's autograder (course.platforms.gradescope)."""
import sys

from course.platforms.gradescope import main

if __name__ == "__main__":
    sys.exit(main())
