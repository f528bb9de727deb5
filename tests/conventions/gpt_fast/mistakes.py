"""Wrong gpt-fast style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("sin_cos_stacked_swapped", "rope.apply_rope", '''
_right_precompute_freqs_cis = precompute_freqs_cis
def precompute_freqs_cis(seq_len, n_elem, base=10000, dtype=torch.bfloat16, rope_scaling=None):
    return _right_precompute_freqs_cis(seq_len, n_elem, base, dtype, rope_scaling).flip(-1)
''', mistake="sine and cosine swapped", key="sin-cos-swapped", cascades=("rope.rope_inv_freq",)),
    Bug("other_way", "rope.apply_rope", '''
def apply_rotary_emb(x, freqs_cis):
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    table = freqs_cis.view(1, pairs.size(1), 1, pairs.size(3), 2)
    cos, sin = table[..., 0], table[..., 1]
    even, odd = pairs[..., 0], pairs[..., 1]
    return torch.stack((even * cos + odd * sin, odd * cos - even * sin), dim=-1).flatten(3).type_as(x)
''', mistake="rotating the other way", key="rotation-direction"),
    Bug("wavelength_without_two_pi", "scaling.llama3_inv_freq", '''
def apply_rope_scaling(freqs, rope_scaling=None):
    factor, old = rope_scaling["factor"], rope_scaling["original_max_position_embeddings"]
    low, high = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    wavelen = 1 / freqs
    smooth = (old / wavelen - low) / (high - low)
    blended = (1 - smooth) * freqs / factor + smooth * freqs
    return torch.where(wavelen < old / high, freqs, torch.where(wavelen > old / low, freqs / factor, blended))
''', mistake="frequencies, angular frequencies and wavelengths confused", key="frequency-vs-wavelength"),
    Bug("smoothing_reversed", "scaling.llama3_inv_freq", '''
def apply_rope_scaling(freqs, rope_scaling=None):
    factor, old = rope_scaling["factor"], rope_scaling["original_max_position_embeddings"]
    low, high = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    wavelen = 2 * math.pi / freqs
    smooth = (old / wavelen - low) / (high - low)
    blended = smooth * freqs / factor + (1 - smooth) * freqs
    return torch.where(wavelen < old / high, freqs, torch.where(wavelen > old / low, freqs / factor, blended))
''', mistake="smoothing weight reversed", key="llama3-smoothing"),
    Bug("bands_swapped", "scaling.llama3_inv_freq", '''
def apply_rope_scaling(freqs, rope_scaling=None):
    factor, old = rope_scaling["factor"], rope_scaling["original_max_position_embeddings"]
    low, high = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    wavelen = 2 * math.pi / freqs
    smooth = (old / wavelen - low) / (high - low)
    blended = (1 - smooth) * freqs / factor + smooth * freqs
    return torch.where(wavelen < old / high, freqs / factor, torch.where(wavelen > old / low, freqs, blended))
''', mistake="Llama 3.1 scaling", key="llama3-bands"),
]
