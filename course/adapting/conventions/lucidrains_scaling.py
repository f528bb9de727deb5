"""lucidrains' rotary-embedding-torch, its context scaling (made by the rope section's module)."""
from course.adapting.conventions.lucidrains import adapt as _adapt


def adapt(found: dict) -> dict:
    made = _adapt(found)
    return {name: made[name] for name in ("linear_scaled_inv_freq", "ntk_scaled_base")}
