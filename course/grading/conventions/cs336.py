"""Stanford CS336 (assignment 1) style: ``RotaryPositionalEmbedding(theta, d_k, max_seq_len,
device=None)`` with ``forward(x, token_positions)``, adjacent (interleaved) pairs, a table of
``max_seq_len`` positions fixed when the module is built."""
from course.grading.conventions import Convention

SOURCE = '''
_course_cs336 = RotaryPositionalEmbedding


def _course_cs336_rotate(x, positions, base):
    pos = _course_whole(_course_positions(x, positions), "RotaryPositionalEmbedding")
    length = int(pos.max()) + 1 if pos.numel() else 1
    return _course_cs336(base, x.shape[-1], length, device=x.device)(x, pos)


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    return _course_rope(x, rotary_dim, interleaved, True, lambda y: _course_cs336_rotate(y, positions, base))


def rope_inv_freq(d, base=10000.0):
    probe = _course_torch.zeros(1, d)
    probe[:, 0::2] = 1.0
    out = _course_cs336(base, d, 2)(probe, _course_torch.ones(1, dtype=_course_torch.long))
    return _course_torch.atan2(out[0, 1::2], out[0, 0::2])


class RotaryEmbedding(_course_cs336):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__(base, d, max_len)
        self._course_settings = (d, base, max_len, interleaved)

    def _course_rotate(self, y, positions):
        d, base, length, interleaved = self._course_settings
        pos = _course_whole(_course_positions(y, positions), "RotaryPositionalEmbedding")
        if pos.numel() and int(pos.max()) >= length:  # its table cannot grow: the module is built again
            length = max(int(pos.max()) + 1, 2 * length)
            _course_cs336.__init__(self, base, d, length, device=y.device)
            self._course_settings = (d, base, length, interleaved)
        return _course_cs336.forward(self, y, pos)

    def forward(self, q, k, positions):
        interleaved = self._course_settings[3]
        return tuple(_course_pairing(t, lambda y: self._course_rotate(y, positions), True, interleaved)
                     for t in (q, k))
'''


def provides(defined: set) -> tuple[dict, dict]:
    return {
        "apply_rope": "your RotaryPositionalEmbedding(theta, d_k, max_seq_len) applied to x and token_positions",
        "rope_inv_freq": "the angles your RotaryPositionalEmbedding turns pairs (1, 0) by at position 1",
        "RotaryEmbedding": "your RotaryPositionalEmbedding, applied to q and to k",
    }, {}


CONVENTION = Convention(
    key="cs336",
    section="rope",
    title="the Stanford CS336 convention",
    names=("RotaryPositionalEmbedding",),
    provides=provides,
    cannot={
        "half_split": "half-split pairs (RotaryPositionalEmbedding pairs adjacent features (2k, 2k+1))",
        "rotary_dim": "partial rotary (RotaryPositionalEmbedding rotates all d_k features)",
        "fractional_positions": "fractional positions (token_positions are integers)",
        "cache_growth": "growing past max_seq_len (its table is fixed when it is built)",
        "argument_checks": "argument checks (the assignment does not ask for them)",
    },
    source=SOURCE,
)
