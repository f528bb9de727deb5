"""Wrong rotary-embedding-torch style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("angles_concatenated", "rope.apply_rope", '''
class RotaryEmbedding(RotaryEmbedding):
    def forward(self, t, seq_len=None, offset=0):
        angles = t.type(self.freqs.dtype)[..., None] * self.freqs
        return torch.cat((angles, angles), dim=-1)
''', mistake="pairing conventions mixed", key="pairing-mixed",
        cascades=("rope.RotaryEmbedding", "scaling.linear_scaled_inv_freq")),
    Bug("rotate_half_sign", "rope.apply_rope", '''
def rotate_half(x):
    first, second = x.reshape(*x.shape[:-1], -1, 2).unbind(dim=-1)
    return torch.stack((second, -first), dim=-1).flatten(-2)
''', mistake="rotating the other way", key="rotation-direction", cascades=("rope.RotaryEmbedding",)),
    Bug("freqs_k_over_d", "rope.rope_inv_freq", '''
class RotaryEmbedding(RotaryEmbedding):
    def __init__(self, dim, theta=10000, **kwargs):
        super().__init__(dim, theta=theta, **kwargs)
        self.freqs.data = 1. / (theta ** (torch.arange(dim // 2).float() / dim))
''', mistake="exponent must be 2k/d", key="exponent-k-over-d",
        cascades=("rope.apply_rope", "rope.RotaryEmbedding", "scaling.linear_scaled_inv_freq",
                  "scaling.ntk_scaled_base")),
    Bug("cached_queries_from_zero", "rope.RotaryEmbedding", '''
class RotaryEmbedding(RotaryEmbedding):
    def rotate_queries_with_cached_keys(self, q, k, seq_dim=None, offset=0):
        return self.rotate_queries_or_keys(q, seq_dim=seq_dim), self.rotate_queries_or_keys(k, seq_dim=seq_dim)
''', mistake="queries placed at the first positions", key="queries-at-start"),
    Bug("interpolation_multiplies", "scaling.linear_scaled_inv_freq", '''
class RotaryEmbedding(RotaryEmbedding):
    def get_seq_pos(self, seq_len, device=None, dtype=None, offset=0):
        return (torch.arange(seq_len, device=device, dtype=dtype) + offset) * self.interpolate_factor
''', mistake="position interpolation", key="pi-direction"),
    Bug("rescale_without_exponent", "scaling.ntk_scaled_base", '''
class RotaryEmbedding(RotaryEmbedding):
    def __init__(self, dim, theta=10000, theta_rescale_factor=1., **kwargs):
        super().__init__(dim, theta=theta * theta_rescale_factor, **kwargs)
''', mistake="the exponent is d/(d-2)", key="ntk-exponent"),
]
