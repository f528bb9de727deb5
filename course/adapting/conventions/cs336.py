"""Stanford CS336 (assignment 1) style: ``RotaryPositionalEmbedding(theta, d_k, max_seq_len,
device=None)`` with ``forward(x, token_positions)``, interleaved pairs, a table of ``max_seq_len``
positions fixed when the module is built."""
import torch

from course.adapting import pairing, rope, table_rows


def adapt(found: dict) -> dict:
    cs336 = found["RotaryPositionalEmbedding"]

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # a module built just long enough for the positions asked
            rows, length = table_rows(y, positions, "RotaryPositionalEmbedding")
            return cs336(base, y.shape[-1], length, device=y.device)(y, rows)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        probe = torch.zeros(1, d)
        probe[:, 0::2] = 1.0
        out = cs336(base, d, 2)(probe, torch.ones(1, dtype=torch.long))
        return torch.atan2(out[0, 1::2], out[0, 0::2])

    class RotaryEmbedding(cs336):
        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            super().__init__(base, d, max_len)
            self._course_settings = (d, base, max_len, interleaved)

        def _course_rotate(self, y, positions):
            d, base, length, interleaved = self._course_settings
            rows, needed = table_rows(y, positions, "RotaryPositionalEmbedding")
            if needed > length:  # its table cannot grow: the module is built again
                length = max(needed, 2 * length)
                cs336.__init__(self, base, d, length, device=y.device)
                self._course_settings = (d, base, length, interleaved)
            return cs336.forward(self, y, rows)

        def forward(self, q, k, positions):
            interleaved = self._course_settings[3]
            return tuple(pairing(t, lambda y: self._course_rotate(y, positions), True, interleaved) for t in (q, k))

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq, "RotaryEmbedding": RotaryEmbedding}
