# section: rope; breaks: rope.rope_matrix
# A graded function that tries to stop or kill the fork server and the grader, and (only if
# both refused, so that it cannot reach anyone else either) sends SIGKILL to every
# process it is allowed to signal (kill(-1): all but itself and init), which must reach
# nobody outside its own sandbox.
import os as _os
import signal as _signal


def rope_matrix(position, d, base=10000.0, interleaved=False):
    fork_server = _os.getppid()
    with open(f"/proc/{fork_server}/stat") as f:
        grader = int(f.read().rsplit(")", 1)[1].split()[1])
    outcome = {}
    for name, pid in (("fork_server", fork_server), ("grader", grader)):
        for sig in (_signal.SIGSTOP, _signal.SIGKILL):
            try:
                _os.kill(pid, sig)
                outcome[f"{name}-{sig.name}"] = "SENT"
            except OSError as err:
                outcome[f"{name}-{sig.name}"] = type(err).__name__
    if "SENT" not in outcome.values():
        _os.kill(-1, _signal.SIGKILL)
        outcome["everyone-SIGKILL"] = "returned"
    raise RuntimeError(f"SIGNALS {outcome}")
