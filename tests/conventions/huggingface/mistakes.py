"""Wrong Hugging Face style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("rotate_half_sign", "rope.apply_rope", '''
def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((x[..., half:], -x[..., :half]), dim=-1)
''', mistake="rotating the other way", cascades=("rope.RotaryEmbedding",), key="rotation-direction"),
    Bug("positions_from_zero", "rope.apply_rope", '''
class LlamaRotaryEmbedding(LlamaRotaryEmbedding):
    @torch.no_grad()
    def forward(self, x, position_ids):
        return super().forward(x, position_ids - position_ids[..., :1])
''', mistake="positions restarting at 0", cascades=("rope.rope_inv_freq", "rope.RotaryEmbedding"),
    key="positions-restart"),
    Bug("half_precision_angles", "rope.apply_rope", '''
class LlamaRotaryEmbedding(LlamaRotaryEmbedding):
    @torch.no_grad()
    def forward(self, x, position_ids):
        freqs = position_ids[..., None].to(x.dtype) * self.inv_freq.to(x.dtype)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()
''', mistake="half precision", cascades=("rope.RotaryEmbedding",), key="half-precision"),
    Bug("inv_freq_k_over_d", "rope.rope_inv_freq", '''
class LlamaRotaryEmbedding(LlamaRotaryEmbedding):
    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None):
        super().__init__(dim, max_position_embeddings, base, device)
        self.inv_freq = 1.0 / (base ** (torch.arange(dim // 2).float() / dim))
''', mistake="exponent must be 2k/d", cascades=("rope.apply_rope", "rope.RotaryEmbedding"), key="exponent-k-over-d"),
]
