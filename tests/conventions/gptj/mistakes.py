"""Wrong GPT-J style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("table_cos_first", "rope.apply_rope", '''
def create_sinusoidal_positions(num_pos, dim):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64) / dim))
    angles = torch.arange(num_pos, dtype=torch.int64).float()[:, None] * inv_freq
    return torch.cat((angles.cos(), angles.sin()), dim=1)
''', mistake="sine and cosine swapped", key="sin-cos-swapped", cascades=("rope.rope_inv_freq",)),
    Bug("rotate_every_two_sign", "rope.apply_rope", '''
def rotate_every_two(x):
    even, odd = x[:, :, :, ::2], x[:, :, :, 1::2]
    return torch.stack((odd, -even), dim=-1).flatten(-2)
''', mistake="rotating the other way", key="rotation-direction"),
    Bug("tables_repeated_by_halves", "rope.apply_rope", '''
def apply_rotary_pos_emb(tensor, sin, cos):
    sin = torch.cat((sin, sin), dim=-1)[:, :, None, :]
    cos = torch.cat((cos, cos), dim=-1)[:, :, None, :]
    return tensor * cos + rotate_every_two(tensor) * sin
''', mistake="pairing conventions mixed", key="pairing-mixed"),
    Bug("inv_freq_k_over_d", "rope.rope_inv_freq", '''
def create_sinusoidal_positions(num_pos, dim):
    inv_freq = 1.0 / (10000 ** (torch.arange(dim // 2) / dim))
    angles = torch.arange(num_pos).float()[:, None] * inv_freq
    return torch.cat((angles.sin(), angles.cos()), dim=1)
''', mistake="exponent must be 2k/d", key="exponent-k-over-d", cascades=("rope.apply_rope",)),
]
