"""What a hidden test may use that code written to another convention cannot express.

A hidden test says so with ``@pytest.mark.uses(feature, ..., when={parameter: value})``
(``when`` limits it to some parametrisations). A convention (course.grading.conventions) or a
user's adapter (``NOT_APPLICABLE`` in the file) declares the features it cannot express; the
grader then does not run those tests for the exercises it grades.
"""
from __future__ import annotations

FEATURES = {
    "interleaved": "pairs (2k, 2k+1) (interleaved=True)",
    "half_split": "pairs (k, k + d/2) checked as such (interleaved=False)",
    "rotary_dim": "partial rotary (rotary_dim)",
    "fractional_positions": "fractional positions",
    "rope_base": "a RoPE base other than 10000",
    "cache_growth": "positions beyond the module's initial max_len",
    "argument_checks": "a ValueError for bad arguments",
    "bidirectional": "ALiBi attention without the causal mask",
    "scaling_parameters": "context scaling with other parameters than the defaults (Llama 3.1's factor 8, 8192 tokens)",
}


def used_features(item) -> set[str]:
    """The features a collected pytest item uses: its `uses` markers whose `when` matches its parameters."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    used = set()
    for marker in item.iter_markers("uses"):
        when = marker.kwargs.get("when") or {}
        if all(params.get(name) == value for name, value in when.items()):
            used.update(marker.args)
    return used
