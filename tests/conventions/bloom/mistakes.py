"""Wrong BLOOM style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("power_of_two_slopes", "alibi.alibi_slopes", '''
def _get_alibi_slopes(num_heads, device):
    return 2.0 ** (-8.0 * torch.arange(1, num_heads + 1, device=device, dtype=torch.float32) / num_heads)
''', mistake="power-of-two formula", key="alibi-power-of-two"),
    Bug("sorted_slopes", "alibi.alibi_slopes", '''
_right_slopes = _get_alibi_slopes
def _get_alibi_slopes(num_heads, device):
    return torch.sort(_right_slopes(num_heads, device), descending=True).values
''', mistake="sorted order", key="alibi-sorted"),
    Bug("batch_forgotten", "alibi.alibi_attention", '''
def build_alibi_tensor(attention_mask, num_heads, dtype):
    seq_length = attention_mask.shape[-1]
    positions = ((attention_mask.cumsum(dim=-1) - 1) * attention_mask)[:, None, :]
    alibi = _get_alibi_slopes(num_heads, attention_mask.device)[None, :, None] * positions
    return alibi.reshape(num_heads, 1, seq_length).to(dtype)
''', mistake="raised RuntimeError"),
]
