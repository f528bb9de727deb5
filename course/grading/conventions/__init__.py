"""Built-in recognisers of public RoPE/ALiBi conventions.

Each module here declares one convention: the learner's names that trigger it, the contract
names it can provide from them (and how, for the report), what it cannot express (features of
course.grading.features, whose tests are then not run), and the adapter source, run in the
learner's process after their cells, that defines the contract names. A convention is used for
a section when its names are defined and some of the section's contract names are not; it only
ever defines names the learner did not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from course.grading.conventions.prelude import PRELUDE


@dataclass(frozen=True)
class Convention:
    key: str
    section: str
    title: str                 # "the Hugging Face convention"
    names: tuple[str, ...]     # all defined: the convention is recognised
    # (names the learner defines) -> ({contract name: how it is made}, {contract name: why it cannot be})
    provides: Callable[[set], tuple[dict, dict]]
    cannot: dict[str, str]     # feature -> why tests using it do not apply
    source: str                # defines the provided names in the learner's namespace
    optional: tuple[str, ...] = ()   # further names the adapter uses when defined
    constants: dict = field(default_factory=dict)  # written at the top of the source

    def looks_for(self) -> set[str]:
        return set(self.names) | set(self.optional)

    def adapter_source(self, names, filename: str) -> str:
        """Runs the adapter in a copy of the learner's namespace, so that it holds the learner's
        functions as they are now (what they rebind later does not reach it), then publishes only
        `names` there. `filename` names the code in tracebacks (the learner's process's ``<cell ...>``)."""
        lines = [f"{name} = {value!r}" for name, value in self.constants.items()]
        body = "\n".join([PRELUDE, *lines, self.source])
        return (f"_course_scope = dict(globals())\n"
                f"exec(compile({body!r}, {filename!r}, 'exec'), _course_scope)\n"
                f"globals().update({{_n: _course_scope[_n] for _n in {tuple(names)!r}}})\n"
                "del _course_scope\n")


def _registry() -> list[Convention]:
    from course.grading.conventions import alibi_paper, bloom, cs336, huggingface, meta_llama

    # In order of preference when a file matches several conventions of one section.
    return [huggingface.CONVENTION, meta_llama.CONVENTION, cs336.CONVENTION, bloom.CONVENTION,
            alibi_paper.CONVENTION]


CONVENTIONS: list[Convention] = _registry()


def lookup_names() -> set[str]:
    """Every learner name some convention looks for."""
    return set().union(*(c.looks_for() for c in CONVENTIONS))
