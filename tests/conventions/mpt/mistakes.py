"""Wrong MPT style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("halves_concatenated_the_other_way", "alibi.alibi_slopes", '''
def gen_slopes(n_heads, alibi_bias_max=8, device=None, return_1d=False):
    padded = 2 ** math.ceil(math.log2(n_heads))
    m = torch.arange(1, padded + 1, dtype=torch.float32, device=device) * (alibi_bias_max / padded)
    slopes = 1.0 / torch.pow(2, m)
    if padded != n_heads:
        slopes = torch.cat((slopes[::2], slopes[1::2]))[:n_heads]
    return slopes if return_1d else slopes.view(1, n_heads, 1, 1)
''', mistake="follows the paper's rule for head counts that are not a power of two",
        cascades=("alibi.alibi_bias", "alibi.alibi_attention")),
    Bug("slopes_over_head_count", "alibi.alibi_slopes", '''
def gen_slopes(n_heads, alibi_bias_max=8, device=None, return_1d=False):
    m = torch.arange(1, n_heads + 1, dtype=torch.float32, device=device) * (alibi_bias_max / n_heads)
    slopes = 1.0 / torch.pow(2, m)
    return slopes if return_1d else slopes.view(1, n_heads, 1, 1)
''', mistake="power-of-two formula", key="alibi-power-of-two",
        cascades=("alibi.alibi_bias", "alibi.alibi_attention")),
    Bug("full_bias_signed", "alibi.alibi_bias", '''
def build_alibi_bias(n_heads, seq_len, full=False, alibi_bias_max=8, device=None, dtype=None):
    keys = torch.arange(1 - seq_len, 1, dtype=torch.int32, device=device).view(1, 1, 1, seq_len)
    if full:
        keys = keys - torch.arange(1 - seq_len, 1, dtype=torch.int32, device=device).view(1, 1, seq_len, 1)
    return (keys * gen_slopes(n_heads, alibi_bias_max, device=device)).to(dtype=dtype)
''', mistake="signed distance", key="alibi-signed-distance", cascades=("alibi.alibi_attention",)),
    Bug("positive_bias", "alibi.alibi_bias", '''
_right_build_alibi_bias = build_alibi_bias
def build_alibi_bias(n_heads, seq_len, full=False, alibi_bias_max=8, device=None, dtype=None):
    return _right_build_alibi_bias(n_heads, seq_len, full, alibi_bias_max, device, dtype).abs()
''', mistake="positive ALiBi bias", key="alibi-bias-sign", cascades=("alibi.alibi_attention",)),
]
