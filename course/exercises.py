"""The graded exercises: ids, points, and where each is taught.

One registry serves the grader (max scores), the notebook builder (nbgrader points) and
the feedback (which notebook section to reread). Ids follow ../shared/CONTRACT.md.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    id: str
    points: float
    where: str  # notebook section a learner should reread

    @property
    def section(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]


NOTEBOOKS = {
    "intuition": "01_intuition",
    "setup": "02_setup",
    "sinusoidal": "03_sinusoidal",
    "learned": "04_learned",
    "relative": "05_relative",
    "rope": "06_rope",
    "alibi": "07_alibi",
    "scaling": "08_scaling",
    "zoo": "11_bug_zoo",
}

_TABLE = [
    # (id, points, notebook section heading)
    ("intuition.attention", 4, "1.1 Attention without positions"),
    ("intuition.causal_mask", 2, "1.5 Causal decoding"),
    ("intuition.shift_gap", 2, "1.2 Absolute versus relative"),
    ("setup.relative_positions", 1, "2.4 Relative offsets"),
    ("setup.position_ids_from_mask", 3, "2.1.1 Padding on the left and on the right"),
    ("setup.next_position_ids", 2, "2.1.2 Ids for generated tokens"),
    ("setup.add_positions", 1, "2.2 Token plus position"),
    ("setup.interpolated_positions", 1, "2.5 Interpolated positions"),
    ("sinusoidal.sinusoidal_encoding", 3, "3.2 Sine and cosine pairs"),
    ("sinusoidal.sinusoidal_table", 1, "3.2 Sine and cosine pairs"),
    ("sinusoidal.sinusoidal_offset_matrix", 3, "3.3 Offsets are rotations"),
    ("sinusoidal.sinusoidal_wavelengths", 1, "3.1 The frequency ladder"),
    ("learned.LearnedPositionalEmbedding", 3, "4.1 The learned table"),
    ("learned.resize_position_table", 3, "4.3 Resizing by interpolation"),
    ("relative.shaw_relative_scores", 3, "5.2 Shaw relative keys"),
    ("relative.shaw_relative_attention", 2, "5.3 Shaw relative values"),
    ("relative.t5_relative_position_bucket", 3, "5.4 T5 buckets"),
    ("relative.t5_relative_bias", 2, "5.5 The T5 bias"),
    ("rope.rope_inv_freq", 1, "6.2 The frequency ladder"),
    ("rope.rotate_complex", 2, "6.3 Deriving the rotation"),
    ("rope.apply_rope", 4, "6.4 Rotating queries and keys"),
    ("rope.rope_matrix", 2, "6.5 RoPE as one matrix"),
    ("rope.interleaved_to_half_split", 2, "6.6 Two ways to pair features"),
    ("rope.RotaryEmbedding", 2, "6.9 A cached rotary module"),
    ("rope.cached_rope_attention", 4, "6.10.1 A padded batch, step by step"),
    ("alibi.alibi_slopes", 3, "7.2 Slopes per head"),
    ("alibi.alibi_bias", 2, "7.3 The bias matrix"),
    ("alibi.alibi_attention", 4, "7.6 Decoding with a cache"),
    ("alibi.cached_alibi_attention", 3, "7.6.1 A padded batch, step by step"),
    ("scaling.linear_scaled_inv_freq", 1, "8.2 Position interpolation"),
    ("scaling.ntk_scaled_base", 1, "8.3 NTK-aware base scaling"),
    ("scaling.dynamic_ntk_inv_freq", 2, "8.4 Dynamic NTK"),
    ("scaling.yarn_inv_freq", 4, "8.5 YaRN"),
    ("scaling.llama3_inv_freq", 3, "8.6 Llama 3.1 scaling"),
    ("scaling.rope_from_config", 2, "8.8 Reading real configurations"),
    ("zoo.diagnosis", 12, "11.3 Your diagnosis"),  # one point per specimen
]

EXERCISES: dict[str, Exercise] = {i: Exercise(i, p, w) for i, p, w in _TABLE}

# The share of an exercise's points its robustness checks carry together (dtype, device, inputs left
# unchanged, ValueErrors for bad arguments: course.grading.suite_runner.stage); its core checks, the
# mathematics, carry the rest. An exercise none of whose robustness checks run is graded on its core alone.
ROBUSTNESS_SHARE = 0.2

SECTIONS = tuple(NOTEBOOKS)


def section_exercises(section: str) -> list[Exercise]:
    """The exercises of one section, in teaching order."""
    if section not in NOTEBOOKS:
        raise ValueError(f"unknown section {section!r}; sections are {', '.join(SECTIONS)}")
    return [e for e in EXERCISES.values() if e.section == section]


def graded_names() -> dict[str, str]:
    """Map each graded top-level name to its exercise id."""
    return {e.name: e.id for e in EXERCISES.values()}


def where_to_look(exercise_id: str) -> str:
    ex = EXERCISES[exercise_id]
    return f"notebook {NOTEBOOKS[ex.section]}, section {ex.where}"
