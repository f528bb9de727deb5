"""Wrong torchtune style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("half_split_pairs", "rope.apply_rope", '''
class RotaryPositionalEmbeddings(RotaryPositionalEmbeddings):
    def forward(self, x, *, input_pos=None):
        rows = self.cache[: x.size(1)] if input_pos is None else self.cache[input_pos]
        rows = rows.view(-1, x.size(1), 1, x.size(-1) // 2, 2)
        cos, sin = rows[..., 0], rows[..., 1]
        a, b = x.float().chunk(2, dim=-1)
        return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1).type_as(x)
''', mistake="pairing convention", key="pairing-convention", cascades=("rope.RotaryEmbedding",)),
    Bug("sine_sign", "rope.apply_rope", '''
class RotaryPositionalEmbeddings(RotaryPositionalEmbeddings):
    def build_rope_cache(self, max_seq_len=4096):
        super().build_rope_cache(max_seq_len)
        self.cache[..., 1] = -self.cache[..., 1]
''', mistake="rotating the other way", key="rotation-direction", cascades=("rope.RotaryEmbedding",)),
    Bug("theta_k_over_d", "rope.rope_inv_freq", '''
class RotaryPositionalEmbeddings(RotaryPositionalEmbeddings):
    def _frequencies(self):
        return 1.0 / (self.base ** (torch.arange(self.dim // 2).float() / self.dim))
''', mistake="exponent must be 2k/d", key="exponent-k-over-d",
        cascades=("rope.apply_rope", "rope.RotaryEmbedding", "scaling.llama3_inv_freq")),
    Bug("input_pos_ignored", "rope.apply_rope", '''
class RotaryPositionalEmbeddings(RotaryPositionalEmbeddings):
    def forward(self, x, *, input_pos=None):
        return super().forward(x)
''', mistake="positions ignored", key="positions-ignored", cascades=("rope.RotaryEmbedding",)),
    Bug("smoothing_reversed", "scaling.llama3_inv_freq", '''
class Llama3ScaledRoPE(Llama3ScaledRoPE):
    def apply_scaling(self, freqs, scale_factor, low_freq_factor, high_freq_factor, old_context_len):
        scaled = []
        for freq in freqs.tolist():
            wavelen = 2 * math.pi / freq
            if wavelen < old_context_len / high_freq_factor:
                scaled.append(freq)
            elif wavelen > old_context_len / low_freq_factor:
                scaled.append(freq / scale_factor)
            else:
                smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
                scaled.append(smooth * freq / scale_factor + (1 - smooth) * freq)
        return torch.tensor(scaled, dtype=freqs.dtype, device=freqs.device)
''', mistake="smoothing weight reversed", key="llama3-smoothing"),
]
