"""The time and memory limits of a learner's process (torch-free, so a batch coordinator can
parse them without loading what the graders load), and their command-line options."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields


def _limit(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass
class Limits:
    call_seconds: float = _limit(10.0, "seconds for one call into the learner's code")
    cell_seconds: float = _limit(30.0, "seconds for one notebook cell while loading")
    cell_seconds_after_hang: float = _limit(5.0, "seconds for each later cell once one has hung (demos calling it)")
    exercise_seconds: float = _limit(30.0, "seconds for all calls made for one exercise")
    file_seconds: float = _limit(300.0, "seconds for all cells of one file and all calls into it (each file of a "
                                        "submission runs in its own process)")
    memory_mb: int = _limit(2048, "address space (MB) a learner process may add to the preloaded libraries")
    file_mb: int = _limit(64, "largest file (MB) it may write")
    scratch_mb: int = _limit(256, "MB its folder may hold, its copied files included (measured as it runs)")
    processes: int = _limit(64, "its processes and threads (enforced when grading as root)")
    # Not a limit but what the grade means, so it travels with them (to batch workers, into the batch's
    # resume key, into Gradescope's config): recognise code written to other conventions and excuse
    # what those cannot express (course.grading.conventions). On for `python -m course.grade`; a class
    # (course.batch, Gradescope) has it off unless the instructor turns it on, so that no learner
    # chooses which checks apply to them.
    conventions: bool = True


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """--call-seconds, --memory-mb, ...: one option per limit."""
    group = parser.add_argument_group("limits of each learner process")
    for f in fields(Limits):
        if isinstance(f.default, bool):
            continue
        group.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                           help=f"{f.metadata['help']} (default {f.default:g})")


def limits_from(args: argparse.Namespace) -> Limits:
    """The limits the options give (`conventions` from a command's own --conventions, else its default)."""
    return Limits(**{f.name: getattr(args, f.name, f.default) for f in fields(Limits)})
