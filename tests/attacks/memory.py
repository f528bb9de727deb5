# section: rope; breaks: rope.rope_matrix
# A graded function that allocates (and touches) memory until something gives.


def rope_matrix(position, d, base=10000.0, interleaved=False):
    hoard = []
    while True:
        hoard.append(torch.ones(32 * 1024 * 1024))  # 128 MB each, written
