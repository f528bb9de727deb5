"""Wrong llama2.c style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("tables_returned_swapped", "rope.apply_rope", '''
_right_precompute_freqs_cis = precompute_freqs_cis
def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs_cos, freqs_sin = _right_precompute_freqs_cis(dim, end, theta)
    return freqs_sin, freqs_cos
''', mistake="sine and cosine swapped", key="sin-cos-swapped", cascades=("rope.rope_inv_freq",)),
    Bug("imaginary_sign", "rope.apply_rope", '''
def apply_rotary_emb(xq, xk, freqs_cos, freqs_sin):
    def turn(x):
        re, im = x.float().reshape(x.shape[:-1] + (-1, 2)).unbind(-1)
        cos, sin = reshape_for_broadcast(freqs_cos, re), reshape_for_broadcast(freqs_sin, re)
        return torch.stack((re * cos + im * sin, im * cos - re * sin), dim=-1).flatten(3).type_as(x)
    return turn(xq), turn(xk)
''', mistake="rotating the other way", key="rotation-direction"),
    Bug("read_interleaved_written_half_split", "rope.apply_rope", '''
def apply_rotary_emb(xq, xk, freqs_cos, freqs_sin):
    def turn(x):
        re, im = x.float().reshape(x.shape[:-1] + (-1, 2)).unbind(-1)
        cos, sin = reshape_for_broadcast(freqs_cos, re), reshape_for_broadcast(freqs_sin, re)
        return torch.cat((re * cos - im * sin, re * sin + im * cos), dim=-1).type_as(x)
    return turn(xq), turn(xk)
''', mistake="rotates each pair by position times its frequency"),
    Bug("positions_from_one", "rope.apply_rope", '''
def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(1, end + 1).float(), freqs)
    return angles.cos(), angles.sin()
''', mistake="positions counted from 1", key="count-from-one", cascades=("rope.rope_inv_freq",)),
]
