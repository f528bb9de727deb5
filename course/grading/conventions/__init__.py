"""Built-in recognisers of public RoPE/ALiBi conventions (the grader's side).

Each module here declares one convention as data: the learner's names it uses and the calls it
makes of them (`signatures`, course.grading.conventions.signatures), the contract names it can
provide (and how, for the report), what it cannot express (features of course.grading.features,
whose tests are then not run). Its learner-side part is the module course.adapting.conventions.<key>
(``adapt(found) -> {contract name: object}``), run in the learner's process. A convention is used for
a section when its names are defined with signatures that fit, some of the section's contract names
are not defined (or are defined with a signature that cannot take the contract's call), and what it
makes passes a probe call; it never replaces a name the learner defined for the contract.

Adding a convention: a declaration here (and in `_registry`), its learner-side module, and a
folder of tests in tests/conventions/. A library whose names reach two sections (gpt-fast's rope
and Llama 3.1 scaling) declares one Convention per section, with one key and title: its learner-side
``adapt`` makes what the `found` names of that section allow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from course.grading.conventions.signatures import Call, ClassCall

# The calls the contract makes of each name a convention can provide (every number of positional
# arguments from its required ones to all of them): a learner's name that can take none of them
# is another library's (say a RotaryEmbedding(dim, theta) whose forward takes one tensor), which a
# convention may grade in its place. (A learner's function that lacks only defaults takes the
# full call: it stays theirs.)
CONTRACT_CALLS = {
    "rope_inv_freq": Call((1, 2)),
    "apply_rope": Call((2, 3, 4, 5)),
    "RotaryEmbedding": ClassCall(Call((1, 2, 3, 4)), Call((3,))),
    "alibi_slopes": Call((1,)),
    "alibi_bias": Call((3,)),
    "alibi_attention": Call((3, 4)),
    "linear_scaled_inv_freq": Call((3,)),
    "ntk_scaled_base": Call((3,)),
    "dynamic_ntk_inv_freq": Call((5,)),
    "yarn_inv_freq": Call((4, 5, 6, 7)),
    "llama3_inv_freq": Call((2, 3, 4, 5, 6)),
}


@dataclass(frozen=True)
class Convention:
    key: str                    # its learner-side module: course.adapting.conventions.<key>
    section: str
    title: str                  # "the Hugging Face convention"
    signatures: dict            # learner name -> the Call or ClassCall made of it; all must fit
    # (learner names used) -> ({contract name: how it is made}, {contract name: why it cannot be})
    provides: Callable[[set], tuple[dict, dict]]
    cannot: dict[str, str]      # feature -> why tests using it do not apply
    optional: dict = field(default_factory=dict)  # further names used when they fit, in order of preference

    def looks_for(self) -> set[str]:
        return set(self.signatures) | set(self.optional)

    def failures_source(self, found, names) -> str:
        """Sent first: which of `names` fail their probe call (`failures`, course.adapting.conventions),
        as `_course_failures()`."""
        return ("from course.adapting.conventions import failures as _course_failures\n"
                f"_course_failures = (lambda _r: lambda: _r)(_course_failures({self.key!r}, globals(), "
                f"{tuple(found)!r}, {tuple(names)!r}))\n")

    def install_source(self, found, names) -> str:
        """What the grader sends to the learner's process: `install` (course.adapting.conventions)
        of the learner's `found` names, binding `names` for the grader's Bound."""
        return ("from course.adapting.conventions import install as _course_install\n"
                f"_course_bound = _course_install({self.key!r}, globals(), {tuple(found)!r}, {tuple(names)!r})\n"
                "del _course_install\n")


def _registry() -> list[Convention]:
    from course.grading.conventions import alibi_paper, bloom, cs336, huggingface, meta_llama
    from course.grading.conventions import (flash_attn, gpt_fast, gpt_neox, gptj, hf_rope_init, llama2c, llama_models,
                                            lucidrains, lucidrains_scaling, mpt, torchtune, torchtune_scaling,
                                            x_transformers)

    # In order of preference when a file matches several conventions of one section: GPT-NeoX's
    # functions also fit Hugging Face's calls, llama-models' precompute_freqs_cis also fits Meta's.
    return [gpt_neox.CONVENTION, huggingface.CONVENTION, lucidrains.CONVENTION, llama_models.CONVENTION,
            meta_llama.CONVENTION, gpt_fast.CONVENTION, llama2c.CONVENTION, flash_attn.CONVENTION, cs336.CONVENTION,
            torchtune.CONVENTION, gptj.CONVENTION,
            bloom.CONVENTION, alibi_paper.CONVENTION, mpt.CONVENTION, x_transformers.CONVENTION,
            hf_rope_init.CONVENTION, torchtune_scaling.CONVENTION, lucidrains_scaling.CONVENTION, gpt_fast.SCALING,
            llama_models.SCALING]


CONVENTIONS: list[Convention] = _registry()


def lookup_names() -> set[str]:
    """Every learner name some convention looks for."""
    return set().union(*(c.looks_for() for c in CONVENTIONS))
