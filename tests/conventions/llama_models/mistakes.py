"""Wrong llama-models style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("smoothing_reversed", "scaling.llama3_inv_freq", '''
def apply_scaling(freqs):
    wavelen = 2 * math.pi / freqs
    smooth = (8192 / wavelen - 1) / (4 - 1)
    scaled = torch.where(wavelen > 8192, freqs / 8, freqs)
    in_band = (wavelen >= 8192 / 4) & (wavelen <= 8192)
    return torch.where(in_band, smooth * freqs / 8 + (1 - smooth) * freqs, scaled)
''', mistake="smoothing weight reversed", key="llama3-smoothing"),
    Bug("smooth_from_wavelength_ratio", "scaling.llama3_inv_freq", '''
def apply_scaling(freqs):
    wavelen = 2 * math.pi / freqs
    smooth = (wavelen / 8192 - 1) / (4 - 1)
    scaled = torch.where(wavelen > 8192, freqs / 8, freqs)
    in_band = (wavelen >= 8192 / 4) & (wavelen <= 8192)
    return torch.where(in_band, (1 - smooth) * freqs / 8 + smooth * freqs, scaled)
''', mistake="smoothing weight from wavelength / original_max_len", key="llama3-smoothing"),
    Bug("every_frequency_divided", "scaling.llama3_inv_freq", '''
def apply_scaling(freqs):
    return freqs / 8
''', mistake="every frequency divided by factor", key="llama3-bands"),
    Bug("conjugate_table", "rope.apply_rope", '''
_right_precompute_freqs_cis = precompute_freqs_cis
def precompute_freqs_cis(dim, end, theta=10000.0, use_scaled=False):
    return _right_precompute_freqs_cis(dim, end, theta, use_scaled).conj()
''', mistake="rotating the other way", key="rotation-direction",
        cascades=("rope.rope_inv_freq", "scaling.llama3_inv_freq")),
]
