# section: rope; breaks: rope.apply_rope
# apply_rope returns the right values but also changes its input in place when the
# grader calls it, and patches the tensor comparisons and copies of the learner's
# process so that a check made there would see no change. Mutation is judged in the
# grader, on the copy of the argument sent back after the call.
import sys as _sys

_solution_apply_rope = apply_rope


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    out = _solution_apply_rope(x, positions, base, interleaved, rotary_dim)
    caller = _sys._getframe(1).f_globals.get("__name__", "")
    if caller == "course.sandbox.child":  # called by the grader, not by RotaryEmbedding
        x.add_(1.0)
        torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
        torch.Tensor.clone = lambda self, *args, **kwargs: self
    return out
