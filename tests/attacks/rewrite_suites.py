# section: rope; breaks: rope.rope_matrix
# A graded function that, where its process runs as the grader's user (no Landlock, no user id
# of its own), appends to a hidden suite, which would change every later learner's grade.
# __SUITES__ is the suites' folder (found by a real attacker in the grader's /proc entries).


def rope_matrix(position, d, base=10000.0, interleaved=False):
    try:
        with open("__SUITES__/test_rope.py", "a") as suite:
            suite.write("\n# rewritten by a learner\n")
        done = "WROTE"
    except OSError as err:
        done = f"DENIED {type(err).__name__}"
    raise RuntimeError(f"REWRITE {done}")
