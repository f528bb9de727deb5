"""Wrong GPT-NeoX style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("frequencies_over_head_size", "rope.apply_rope", '''
class GPTNeoXRotaryEmbedding(GPTNeoXRotaryEmbedding):
    @staticmethod
    def compute_default_rope_parameters(config, device=None, **kwargs):
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        rotary_ndims = int(head_dim * config.rope_parameters.get("partial_rotary_factor", 1.0))
        base = config.rope_parameters["rope_theta"]
        return 1.0 / (base ** (torch.arange(0, rotary_ndims, 2, dtype=torch.float) / head_dim)), 1.0
''', mistake="frequencies over the head dimension", key="rotary-dim", cascades=("rope.RotaryEmbedding",)),
    Bug("rotates_last_features", "rope.apply_rope", '''
def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    def turn(x):
        cut = x.shape[-1] - cos.shape[-1]
        return torch.cat((x[..., :cut], x[..., cut:] * cos + rotate_half(x[..., cut:]) * sin), dim=-1)
    return turn(q), turn(k)
''', mistake="partial rotary applied to the wrong features", key="rotary-last-features", cascades=("rope.RotaryEmbedding",)),
    Bug("rotate_half_sign", "rope.apply_rope", '''
def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((x[..., half:], -x[..., :half]), dim=-1)
''', mistake="rotating the other way", key="rotation-direction", cascades=("rope.RotaryEmbedding",)),
    Bug("rotate_half_whole_head", "rope.apply_rope", '''
def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    r = cos.shape[-1]
    def turn(x):
        return torch.cat((x[..., :r] * cos + rotate_half(x)[..., :r] * sin, x[..., r:]), dim=-1)
    return turn(q), turn(k)
''', mistake="partial rotary", key="rotary-pairs-whole-head", cascades=("rope.RotaryEmbedding",)),
]
