"""Wrong CS336 style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("half_split_pairs", "rope.apply_rope", '''
class RotaryPositionalEmbedding(RotaryPositionalEmbedding):
    def forward(self, x, token_positions):
        cos, sin = self.cos[token_positions], self.sin[token_positions]
        half = x.shape[-1] // 2
        a, b = x[..., :half].float(), x[..., half:].float()
        return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1).to(x.dtype)
''', mistake="other pairing convention", cascades=("rope.rope_inv_freq", "rope.RotaryEmbedding"),
    key="pairing-convention"),
    Bug("positions_from_zero", "rope.apply_rope", '''
class RotaryPositionalEmbedding(RotaryPositionalEmbedding):
    def forward(self, x, token_positions):
        return super().forward(x, torch.arange(x.shape[-2], device=x.device))
''', mistake="positions restarting at 0", cascades=("rope.rope_inv_freq", "rope.RotaryEmbedding"),
    key="positions-restart"),
    Bug("half_precision_angles", "rope.apply_rope", '''
class RotaryPositionalEmbedding(RotaryPositionalEmbedding):
    def __init__(self, theta, d_k, max_seq_len, device=None):
        super().__init__(theta, d_k, max_seq_len, device)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, d_k, 2, device=device, dtype=torch.float32) / d_k))

    def forward(self, x, token_positions):
        angles = token_positions[..., None].to(x.dtype) * self.inv_freq.to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * angles.cos() - odd * angles.sin(), even * angles.sin() + odd * angles.cos()),
                           dim=-1).flatten(-2)
''', mistake="half precision", cascades=("rope.RotaryEmbedding",), key="half-precision"),
    Bug("freqs_k_over_d", "rope.rope_inv_freq", '''
class RotaryPositionalEmbedding(RotaryPositionalEmbedding):
    def __init__(self, theta, d_k, max_seq_len, device=None):
        super().__init__(theta, d_k, max_seq_len, device)
        inv_freq = 1.0 / (theta ** (torch.arange(d_k // 2, device=device, dtype=torch.float32) / d_k))
        angles = torch.arange(max_seq_len, device=device, dtype=torch.float32)[:, None] * inv_freq
        self.cos, self.sin = angles.cos(), angles.sin()
''', mistake="exponent must be 2k/d", cascades=("rope.apply_rope", "rope.RotaryEmbedding"), key="exponent-k-over-d"),
]
