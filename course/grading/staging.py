"""A learner's files, copied once into a folder only the grader can read, before anything reads them.

A learner who can write their folder while it is graded can swap a file or a folder for a
symbolic link between the moment it is listed and the moment it is opened, and have the hidden
suites copied beside their code or a solution graded as theirs. So below the folder holding what
was given (the class folder, a learner's parent folder: the caller's), nothing is opened by name:
every folder and file is opened relative to an open folder with O_NOFOLLOW, checked (fstat) to
be a folder or a regular file, and copied within the size limits. Reading, hashing and the
learner's working copy then use the snapshot alone.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

SUBMISSION_SUFFIXES = (".ipynb", ".py")
WORKSPACE_MB = 32      # at most this much of a learner's folders is copied for their code
WORKSPACE_FILES = 500  # and at most this many files
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the grader
_FOLDER = _FILE | os.O_DIRECTORY
_CHUNK = 1 << 20
LINK = "is a symbolic link (not followed)"


def visible(name: str) -> bool:
    """Not a hidden file or folder (``.ipynb_checkpoints`` included) nor ``__pycache__``."""
    return not name.startswith(".") and name != "__pycache__"


def open_below(folder_fd: int, parts, flags: int = _FILE) -> int:
    """Open `parts` below the open folder, following no symbolic link on the way (OSError if any)."""
    fd = folder_fd
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            opened = os.open(part, flags if last else _FOLDER, dir_fd=fd)
            if fd != folder_fd:
                os.close(fd)
            fd = opened
    except BaseException:
        if fd != folder_fd:
            os.close(fd)
        raise
    return os.dup(fd) if fd == folder_fd else fd


def visible_files(folder_fd: int) -> list[tuple[str, ...]]:
    """The regular files in the open folder and its visible subfolders, shallowest first, sorted by
    name in each folder; hidden entries and symbolic links are left out (as listed: staging checks
    each again as it opens it)."""
    found, level = [], [()]
    while level:
        below = []
        for parts in level:
            try:
                fd = open_below(folder_fd, parts, _FOLDER)
            except OSError:
                continue
            try:
                with os.scandir(fd) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
                for entry in entries:
                    if not visible(entry.name) or entry.is_symlink():
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        below.append((*parts, entry.name))
                    elif entry.is_file(follow_symlinks=False):
                        found.append((*parts, entry.name))
            except OSError:
                pass
            finally:
                os.close(fd)
        level = below
    return found


@dataclass
class Snapshot:
    """What was copied: `root` stands for the folder the working copy's names are relative to."""

    folder: Path                                   # the private staging folder (mode 0700)
    root: Path = None
    graded: list[Path] = field(default_factory=list)                 # staged files to grade, in order
    refused: list[tuple[Path, str]] = field(default_factory=list)    # (learner's path, why not: "is not a file")
    copies: list[tuple[str, Path]] = field(default_factory=list)     # (path in the working copy, staged file)
    sources: dict[Path, Path] = field(default_factory=dict)          # staged file -> the learner's path


class _Stager:
    """Copies files below one open folder (`anchor`) into `snapshot.folder`, each at most once."""

    def __init__(self, anchor: Path, anchor_fd: int, snapshot: Snapshot, file_mb: int):
        self.anchor, self.fd, self.snapshot, self.limit = anchor, anchor_fd, snapshot, file_mb * 2**20
        self.staged: dict[tuple[str, ...], Path | str] = {}  # parts -> staged file, or why not

    def stage(self, parts: tuple[str, ...], room: int | None = None) -> Path | str:
        """The staged copy of `parts`, or why there is none; `room`: bytes left for it, if fewer
        than the limit of a file (nothing is copied that could not be kept)."""
        if parts not in self.staged:
            self.staged[parts] = self._copy(parts, self.limit if room is None else min(room, self.limit))
        return self.staged[parts]

    def _copy(self, parts: tuple[str, ...], limit: int) -> Path | str:
        try:
            fd = open_below(self.fd, parts)
        except OSError as err:
            return LINK if err.errno in (errno.ELOOP, errno.ENOTDIR) else "is not a file"
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return "is not a file"
            if info.st_size > limit:
                return f"is larger than {limit / 2**20:g} MB" + (" (--file-mb)" if limit == self.limit else "")
            target = self.snapshot.folder.joinpath(*parts)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                left = info.st_size  # no more than fstat saw: a file growing meanwhile is cut there
                while left > 0:
                    chunk = os.read(fd, min(left, _CHUNK))
                    if not chunk:
                        break
                    os.write(out, chunk)
                    left -= len(chunk)
            finally:
                os.close(out)
        except OSError:
            return "cannot be read"
        finally:
            os.close(fd)
        self.snapshot.sources[target] = self.anchor.joinpath(*parts)
        return target


def _kind(anchor_fd: int, parts) -> str:
    """'folder', 'file', 'link' or 'missing': what `parts` is, opened without following links."""
    try:
        fd = open_below(anchor_fd, parts)
    except OSError as err:
        return "link" if err.errno in (errno.ELOOP, errno.ENOTDIR) else "missing"
    try:
        return "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
    finally:
        os.close(fd)


@contextmanager
def snapshot(paths, file_mb: int, beside=()):
    """The files to grade among `paths` (a folder: its notebooks and modules) and the working copy
    (the files given, then the visible files of each folder of `paths` and `beside`, taking turns
    so that one folder full of data cannot crowd out another's; none over `file_mb`, at most
    WORKSPACE_MB and WORKSPACE_FILES in all), copied into a private folder removed on exit. A file
    given alone is copied alone: the files beside it may be other students' work."""
    paths = [Path(os.path.abspath(p)) for p in paths]
    extra = [Path(os.path.abspath(p)) for p in beside]
    shot = Snapshot(Path(tempfile.mkdtemp(prefix="course-staged-")))
    try:
        if paths or extra:
            _take(shot, paths, extra, file_mb)
        else:
            shot.root = shot.folder
        yield shot
    finally:
        shutil.rmtree(shot.folder, ignore_errors=True)


def _take(shot: Snapshot, paths: list[Path], extra: list[Path], file_mb: int) -> None:
    everything = paths + extra
    anchor = Path(os.path.commonpath([p.parent for p in everything]))  # the caller's folder: trusted
    try:
        anchor_fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        shot.root, shot.refused = shot.folder, [(p, "is not a file") for p in paths]
        return
    try:
        stager = _Stager(anchor, anchor_fd, shot, file_mb)
        kinds = {p: _kind(anchor_fd, p.relative_to(anchor).parts) for p in everything}
        listed = {p: [p.relative_to(anchor).parts + f for f in _listing(anchor_fd, p, anchor)]
                  for p in everything if kinds[p] == "folder"}
        root = Path(os.path.commonpath([p if kinds[p] == "folder" else p.parent for p in everything]))
        shot.root = shot.folder.joinpath(*root.relative_to(anchor).parts)
        graded = []
        for path in paths:
            parts = path.relative_to(anchor).parts
            if kinds[path] == "folder":
                found = sorted((f for f in listed[path] if f[-1].lower().endswith(SUBMISSION_SUFFIXES)),
                               key=lambda f: "/".join(f[len(parts):]))
                graded += found
                if not found:
                    shot.refused.append((path, "holds no notebook (.ipynb) or module (.py)"))
            elif kinds[path] == "link":
                shot.refused.append((path, LINK))
            elif kinds[path] == "missing":
                shot.refused.append((path, "is not a file"))
            else:
                graded.append(parts)
        for parts in graded:
            staged = stager.stage(parts)
            if isinstance(staged, Path):
                shot.graded.append(staged)
            else:
                shot.refused.append((anchor.joinpath(*parts), staged))
        turns = zip_longest(*(listed[p][:WORKSPACE_FILES] for p in everything if p in listed))
        _working_copy(shot, stager, graded + [f for turn in turns for f in turn if f is not None])
    finally:
        os.close(anchor_fd)


def _listing(anchor_fd: int, folder: Path, anchor: Path) -> list[tuple[str, ...]]:
    try:
        fd = open_below(anchor_fd, folder.relative_to(anchor).parts, _FOLDER)
    except OSError:
        return []
    try:
        return visible_files(fd)
    finally:
        os.close(fd)


def _working_copy(shot: Snapshot, stager: _Stager, candidates) -> None:
    chosen, total = set(), 0
    for parts in candidates:
        if parts in chosen or len(chosen) >= WORKSPACE_FILES:
            continue
        staged = stager.staged.get(parts) or stager.stage(parts, WORKSPACE_MB * 2**20 - total)
        if not isinstance(staged, Path):
            continue
        size = staged.stat().st_size
        if total + size > WORKSPACE_MB * 2**20:
            continue
        chosen.add(parts)
        total += size
        shot.copies.append((staged.relative_to(shot.root).as_posix(), staged))
