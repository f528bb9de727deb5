# section: rope; breaks: rope.rope_matrix
# rope_matrix is an object that raises when the learner's process inspects it, so that
# process cannot even tell the grader which names it defines. The grader falls back to
# the names the code defines statically and grades them; only rope_matrix loses points.


class _Trap:
    @property
    def __class__(self):
        raise RuntimeError("do not look at me")

    def __call__(self, position, d, base=10000.0, interleaved=False):
        return torch.zeros(d, d)


rope_matrix = _Trap()
