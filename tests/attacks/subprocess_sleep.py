# section: rope; breaks: rope.rope_matrix
# A graded function that starts a long-running child program (a new Python, and `sleep`)
# and returns a wrong answer without waiting for either.
import subprocess as _subprocess
import sys as _sys


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _subprocess.Popen([_sys.executable, "-c", "import time; time.sleep(1000)", "__MARKER__"])
    _subprocess.Popen(["/bin/sh", "-c", "sleep 1000; true", "__MARKER__"])
    return torch.zeros(d, d)
