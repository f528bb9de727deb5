"""A cap on what a learner's process keeps in its scratch folder.

RLIMIT_FSIZE caps one file; without privileges nothing caps a folder (no tmpfs, no quota), so
the grader measures the folder itself: after every reply of the learner's process, and every
POLL_SECONDS while it runs. Over the cap, the process is killed (its call fails), and the folder
is reset to the learner's files before the next process starts. Between two polls the learner
can write what its disk takes in POLL_SECONDS: the overshoot is bounded by that, not zero.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

SCRATCH_FILES = 2000  # entries (files, folders) a scratch folder may hold: each is measured after every reply
POLL_SECONDS = 0.2


def over_cap(folder: Path, mb: int, files: int = SCRATCH_FILES) -> str:
    """Why `folder` holds too much ("more than 256 MB"), or "" if it does not. Sizes are what each
    file takes on disk or its length, whichever is more; a file with several links counts once."""
    used, count, seen, folders = 0, 0, set(), [os.fspath(folder)]
    while folders:
        try:
            with os.scandir(folders.pop()) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            count += 1
            if count > files:
                return f"more than {files} files"
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                used += max(info.st_size, getattr(info, "st_blocks", 0) * 512)
                if used > mb * 2**20:
                    return f"more than {mb} MB"
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return ""


class ScratchWatch:
    """Polls one scratch folder while its learner's process runs; `stop` (a callable) kills it."""

    def __init__(self, folder: Path, mb: int, stop):
        self.folder, self.mb, self._stop_learner = folder, mb, stop
        self.why = ""  # set when the folder went over the cap; cleared by reset
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str:
        """Why the folder is over the cap (measured now, unless it was already), or ""."""
        self.why = self.why or over_cap(self.folder, self.mb)
        return self.why

    def message(self) -> str:
        return f"your code kept {self.why} in its folder (--scratch-mb {self.mb}, {SCRATCH_FILES} files)"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="course-scratch-watch")
            self._thread.start()

    def _run(self) -> None:
        while not self._closed.wait(POLL_SECONDS):
            if not self.why and self.check():
                self._stop_learner()

    def close(self) -> None:
        self._closed.set()
