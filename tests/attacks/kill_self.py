# section: rope; breaks: rope.rope_matrix
# A graded function that sends SIGKILL to its own process.
import os as _os
import signal as _signal


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _os.kill(_os.getpid(), _signal.SIGKILL)
