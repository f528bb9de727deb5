"""torchtune style: ``RotaryPositionalEmbeddings(dim, max_seq_len, base)`` (and its subclass
``Llama3ScaledRoPE``) called as ``forward(x, *, input_pos)`` on ``(B, T, H, D)``, pairs (2k, 2k+1), each
token's position a row of a cache of ``max_seq_len`` rows, which ``build_rope_cache`` rebuilds longer;
its frequencies are the buffer ``theta``."""
from course.adapting import from_layout, pairing, rope, table_rows, to_layout


def rotated(forward, module, y, positions):
    """y (..., T, D) as (batch, T, 1 head, D) through the library's `forward` of `module`, input_pos (batch, T)"""
    rows, _ = table_rows(y, positions, "input_pos")
    return from_layout(forward(module, to_layout(y, "bthd"), input_pos=rows.reshape(-1, y.shape[-2])), "bthd", y)


def adapt(found: dict) -> dict:
    if "Llama3ScaledRoPE" in found:  # the scaling section's convention (course.grading.conventions.torchtune_scaling)
        scaled = found["Llama3ScaledRoPE"]

        def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
            return scaled(d, max_seq_len=2, base=base, scale_factor=factor, low_freq_factor=low_freq_factor,
                          high_freq_factor=high_freq_factor, old_context_len=original_max_len).theta.detach().float()
        return {"llama3_inv_freq": llama3_inv_freq}
    torchtune = found["RotaryPositionalEmbeddings"]

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # a module built long enough for the positions asked (and for T, its rows without input_pos)
            _, length = table_rows(y, positions, "input_pos")
            module = torchtune(y.shape[-1], max_seq_len=max(length, y.shape[-2]), base=base).to(y.device)
            return rotated(torchtune.forward, module, y, positions)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        return torchtune(d, max_seq_len=2, base=base).theta.detach().float()

    class RotaryEmbedding(torchtune):
        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            super().__init__(d, max_seq_len=max_len, base=base)
            self._course_settings = (max_len, interleaved)

        def _course_rotate(self, y, positions):
            _, needed = table_rows(y, positions, "input_pos")
            length, interleaved = self._course_settings
            if max(needed, y.shape[-2]) > length:  # its own way to a longer cache
                length = max(needed, y.shape[-2], 2 * length)
                self.build_rope_cache(length)
                self._course_settings = (length, interleaved)
            return rotated(torchtune.forward, self, y, positions)

        def forward(self, q, k, positions):
            return tuple(pairing(t, lambda y: self._course_rotate(y, positions), True, self._course_settings[1])
                         for t in (q, k))

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq, "RotaryEmbedding": RotaryEmbedding}
