"""torchtune style: ``RotaryPositionalEmbeddings(dim, max_seq_len, base)`` (and its subclass
``Llama3ScaledRoPE``) called as ``forward(x, *, input_pos)`` on ``(B, T, H, D)``, pairs (2k, 2k+1), each
token's position a row of a cache of ``max_seq_len`` rows, which ``build_rope_cache`` rebuilds longer."""
import torch

from course.adapting import from_layout, pairing, rope, table_rows, to_layout


def rotated(forward, module, y, positions):
    """y (..., T, D) through the library's `forward` of `module`, every token its own row of input_pos"""
    rows, _ = table_rows(y, positions, "input_pos")
    tokens = to_layout(y, "bthd", tokens=True)
    return from_layout(forward(module, tokens, input_pos=rows.reshape(1, -1)), "bthd", y)


def angles_at_one(module, d):
    """the angles the module turns pairs (1, 0) by at position 1: its frequencies"""
    pairs = torch.zeros(1, 1, 1, d)
    pairs[..., 0::2] = 1.0
    out = module(pairs, input_pos=torch.ones(1, 1, dtype=torch.long))[0, 0, 0]
    return torch.atan2(out[1::2], out[0::2])


def adapt(found: dict) -> dict:
    if "Llama3ScaledRoPE" in found:  # the scaling section's convention (course.grading.conventions.torchtune_scaling)
        scaled = found["Llama3ScaledRoPE"]

        def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
            return angles_at_one(scaled(d, max_seq_len=2, base=base, scale_factor=factor, low_freq_factor=low_freq_factor,
                                        high_freq_factor=high_freq_factor, old_context_len=original_max_len), d)
        return {"llama3_inv_freq": llama3_inv_freq}
    torchtune = found["RotaryPositionalEmbeddings"]

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # a module built just long enough for the positions asked
            _, length = table_rows(y, positions, "input_pos")
            module = torchtune(y.shape[-1], max_seq_len=length, base=base).to(y.device)
            return rotated(torchtune.forward, module, y, positions)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        return angles_at_one(torchtune(d, max_seq_len=2, base=base), d)

    class RotaryEmbedding(torchtune):
        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            super().__init__(d, max_seq_len=max_len, base=base)
            self._course_settings = (max_len, interleaved)

        def _course_rotate(self, y, positions):
            _, needed = table_rows(y, positions, "input_pos")
            length, interleaved = self._course_settings
            if needed > length:  # its own way to a longer cache
                length = max(needed, 2 * length)
                self.build_rope_cache(length)
                self._course_settings = (length, interleaved)
            return rotated(torchtune.forward, self, y, positions)

        def forward(self, q, k, positions):
            return tuple(pairing(t, lambda y: self._course_rotate(y, positions), True, self._course_settings[1])
                         for t in (q, k))

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq, "RotaryEmbedding": RotaryEmbedding}
