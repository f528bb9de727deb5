"""The time and memory limits of a learner's process (torch-free, so a batch coordinator can
parse them without loading what the graders load)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Limits:
    call_seconds: float = 10.0        # one call into the learner's code
    cell_seconds: float = 30.0        # one notebook cell while loading
    cell_seconds_after_hang: float = 5.0  # each later cell, once one has hung (demos calling it)
    exercise_seconds: float = 30.0    # all calls made for one exercise
    submission_seconds: float = 300.0  # all calls and cells of one submission
    memory_mb: int = 2048              # address space each learner process may add to the preloaded libraries
    file_mb: int = 64                  # largest file it may write
    processes: int = 64                # its processes and threads (enforced when grading as root)
