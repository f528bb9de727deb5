# section: rope; breaks: rope.rope_matrix
# A learner who leaves rope_matrix unwritten and asks for the course's version, hoping the grader
# grades it as theirs. Inside the grader use_reference does nothing: the stub is graded (0 points).
def rope_matrix(position, d, base=10000.0, interleaved=False):
    raise NotImplementedError()


from course.selfcheck import use_reference  # noqa: E402

use_reference("rope.rope_matrix")
