"""Wrong Meta Llama style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("half_split_pairs", "rope.apply_rope", '''
def apply_rotary_emb(xq, xk, freqs_cis):
    def turn(x):
        half = x.shape[-1] // 2
        z = torch.complex(x[..., :half].float(), x[..., half:].float())
        z = z * reshape_for_broadcast(freqs_cis, z)
        return torch.cat((z.real, z.imag), dim=-1).type_as(x)
    return turn(xq), turn(xk)
''', mistake="other pairing convention", key="pairing-convention"),
    Bug("conjugate", "rope.apply_rope", '''
_right_apply_rotary_emb = apply_rotary_emb
def apply_rotary_emb(xq, xk, freqs_cis):
    return _right_apply_rotary_emb(xq, xk, freqs_cis.conj())
''', mistake="rotating the other way", key="rotation-direction"),
    Bug("freqs_k_over_d", "rope.rope_inv_freq", '''
def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(dim // 2).float() / dim))
    angles = torch.outer(torch.arange(end, dtype=torch.float32), freqs)
    return torch.polar(torch.ones_like(angles), angles)
''', mistake="exponent must be 2k/d", cascades=("rope.apply_rope",), key="exponent-k-over-d"),
]
