"""Wrong flash-attn reference style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("rotate_half_sign", "rope.apply_rope", '''
def rotate_half(x, interleaved=False):
    if not interleaved:
        first, second = x.chunk(2, dim=-1)
        return torch.cat((second, -first), dim=-1)
    first, second = x[..., ::2], x[..., 1::2]
    return torch.stack((second, -first), dim=-1).flatten(-2)
''', mistake="rotating the other way", key="rotation-direction"),
    Bug("interleaved_tables_concatenated", "rope.apply_rope", '''
def apply_rotary_emb_torch(x, cos, sin, interleaved=False):
    ro_dim = cos.shape[-1] * 2
    cos, sin = torch.cat((cos, cos), dim=-1).unsqueeze(-2), torch.cat((sin, sin), dim=-1).unsqueeze(-2)
    rotated = x[..., :ro_dim] * cos + rotate_half(x[..., :ro_dim], interleaved) * sin
    return torch.cat((rotated, x[..., ro_dim:]), dim=-1)
''', mistake="pairing conventions mixed", key="pairing-mixed"),
    Bug("rotates_last_features", "rope.apply_rope", '''
def apply_rotary_emb_torch(x, cos, sin, interleaved=False):
    ro_dim = cos.shape[-1] * 2
    if interleaved:
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    else:
        cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    kept, part = x[..., : x.shape[-1] - ro_dim], x[..., x.shape[-1] - ro_dim:]
    return torch.cat((kept, part * cos + rotate_half(part, interleaved) * sin), dim=-1)
''', mistake="the last 4 features rotated", key="rotary-last-features"),
    Bug("interleaved_flag_dropped", "rope.apply_rope", '''
_right_apply_rotary_emb_torch = apply_rotary_emb_torch
def apply_rotary_emb_torch(x, cos, sin, interleaved=False):
    return _right_apply_rotary_emb_torch(x, cos, sin)
''', mistake="pairing convention swapped", key="pairing-convention"),
]
