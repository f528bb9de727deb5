"""Whether a class's grades can be trusted: each learner's process is confined, and the hidden
suites and the course package are still those grading started with.

Without Landlock and without a user id of its own (not grading as root: macOS, WSL 1, older
kernels, some containers) a learner's process runs as the grader's user: it can write the hidden
suites and the course package, and so change every later learner's grade. The class modes
(``course.batch``, the Gradescope run, ``course.grade --serve``) therefore refuse to grade then,
unless told ``--allow-unconfined``; and they take a digest of those files when they start and
check it before and after each learner, stopping at once when it changed.
"""
from __future__ import annotations

import hashlib
import os

from course.locations import suites_dir

ALLOW_UNCONFINED_HELP = ("grade even where a learner's process is not confined (no Landlock and no user id of its "
                         "own: macOS, WSL 1, older kernels, some containers): it could then change the hidden suites "
                         "or the course package, and every later grade (grading stops if they change)")


class GradingRefused(RuntimeError):
    """Grading stops: learners would be graded by code one of them could have changed."""


def confined(status: dict) -> bool:
    """Whether a learner's process with this isolation status cannot write the grader's files:
    Landlock (it writes only in its scratch folder) or a user id of its own."""
    return bool(status.get("landlock")) or status.get("uid") in ("own", "own+read")


def require_confined(limits=None) -> dict:
    """The isolation status of a learner's process here; GradingRefused if it is not confined."""
    from course.sandbox.learner_process import isolation_status

    status = isolation_status(limits)
    if not confined(status):
        raise GradingRefused(
            f"refusing to grade a class here: a learner's process would not be confined (Landlock: "
            f"{status.get('landlock', 0) or 'none'}, user: {status.get('uid', 'same')}), so it could rewrite the hidden "
            f"suites or the course package and change every later grade. Grade on Linux 5.13+ or as root, or "
            f"pass --allow-unconfined to grade anyway (grading then stops if those files change).")
    return status


def _walk(root: str, prefix: str, suffixes) -> list[tuple[str, str]]:
    """(name under `prefix`, path) of the files below `root` ending in `suffixes` (None: all),
    compiled modules aside, in a fixed order."""
    found = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name != "__pycache__":
                found += _walk(entry.path, f"{prefix}/{entry.name}", suffixes)
        elif suffixes is None or entry.name.endswith(suffixes):
            found.append((f"{prefix}/{entry.name}", entry.path))
    return found


def code_files() -> list[tuple[str, str]]:
    """(name, path) of what grading runs: every .py and .json of this course package (compiled
    modules aside; not other folders a namespace package `course` may also span, which a
    sys.path entry can add at any time) and every file of the hidden suites' folder."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return _walk(package, "course", (".py", ".json")) + _walk(str(suites_dir()), "suites", None)


def code_digest() -> str:
    """One SHA-256 over the names and contents of code_files()."""
    digest = hashlib.sha256()
    for name, path in code_files():
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as err:
            data = f"<unreadable: {err.strerror}>".encode()
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _stat_signature() -> tuple:
    """What the files' inodes say: any write, rename or replacement changes a file's ctime, which
    only the clock sets (a process cannot put it back as it can the mtime)."""
    signature = []
    for name, path in code_files():
        try:
            info = os.stat(path)
            signature.append((name, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
        except OSError:
            signature.append((name,))
    return tuple(signature)


class CodeGuard:
    """The digest grading started with (or was given: a batch's workers get the batch's). Each
    check compares the files' inodes first (a few milliseconds) and reads them again only when
    those changed (a hash of every file takes tens of milliseconds, a learner's grading about 100)."""

    def __init__(self, expected: str | None = None):
        self._signature = _stat_signature()
        self.expected = expected or code_digest()
        if expected:
            self.check(force=True)

    def check(self, force: bool = False) -> None:
        """GradingRefused if the hidden suites or the course package changed since."""
        signature = _stat_signature()
        if signature == self._signature and not force:
            return
        if code_digest() != self.expected:
            raise GradingRefused("grading stopped: the hidden suites or the course package changed while learners "
                                 "were graded (a learner's process may have written them); restore them "
                                 "and grade the learners from this one on again")
        self._signature = signature
