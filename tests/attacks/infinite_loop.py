# section: rope; breaks: rope.rope_matrix
# A graded function that never returns (pure CPU, no system call to interrupt).


def rope_matrix(position, d, base=10000.0, interleaved=False):
    n = 0
    while True:
        n += 1
