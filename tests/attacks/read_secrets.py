# section: rope; breaks: rope.rope_matrix
# A graded function that goes looking for what it should not see: the hidden suites, the
# solutions, the source notebooks (they hold the solutions), the repository's git
# objects, and every environment it can find (its own, the fork server's, the grader's). It
# raises with a short account of what it found, which the grader shows as feedback.
import os as _os

import course as _course

_REPO = _os.path.dirname(list(_course.__path__)[0])
_TARGETS = {
    "suite": "grader_tests/test_rope.py",
    "solution": "solutions/rope.py",
    "notebook": "source_notebooks/06_rope/06_rope.ipynb",
    "git": ".git/HEAD",
}


def _read(path, n=60):
    try:
        with open(path, "rb") as f:
            return "READ " + f.read(n).decode("utf-8", "replace").replace("\n", " ")
    except OSError as err:
        return f"DENIED {type(err).__name__}"


def _grader_pid():
    try:
        with open(f"/proc/{_os.getppid()}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _secrets_in(text):
    return [entry[:80] for entry in text.split("\0") if "SECRET" in entry]


def rope_matrix(position, d, base=10000.0, interleaved=False):
    found = {name: _read(_os.path.join(_REPO, rel)) for name, rel in _TARGETS.items()}
    try:
        found["listing"] = "LISTED " + " ".join(sorted(_os.listdir(_REPO)))[:80]
    except OSError as err:
        found["listing"] = f"DENIED {type(err).__name__}"
    found["own_env"] = _secrets_in("\0".join(f"{k}={v}" for k, v in _os.environ.items())) or "none"
    for name, pid in (("self", "self"), ("fork_server", _os.getppid()), ("grader", _grader_pid())):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                found[f"{name}_environ"] = _secrets_in(f.read().decode("utf-8", "replace")) or "none"
        except OSError as err:
            found[f"{name}_environ"] = f"DENIED {type(err).__name__}"
    raise RuntimeError("LEAK-REPORT " + "; ".join(f"{k}: {v}" for k, v in found.items()))
