"""Wrong x-transformers style code: each is appended to correct.py and graded through the recogniser."""
from tests.bank import Bug

BUGS = [
    Bug("cache_sliced_from_the_start", "alibi.alibi_attention", '''
class AlibiPositionalBias(AlibiPositionalBias):
    def forward(self, i, j):
        if self.bias is not None and self.bias.shape[-1] >= j and self.bias.shape[-2] >= i:
            return self.bias[..., :i, :j]
        return super().forward(i, j)
''', mistake="queries placed at the first positions", key="queries-at-start"),
    Bug("queries_from_zero", "alibi.alibi_attention", '''
class AlibiPositionalBias(AlibiPositionalBias):
    def forward(self, i, j):
        return self.forward_custom_pos(torch.arange(i, device=self.device), torch.arange(j, device=self.device))
''', mistake="queries placed at the first positions", key="queries-at-start"),
    Bug("signed_distance", "alibi.alibi_bias", '''
class AlibiPositionalBias(AlibiPositionalBias):
    def forward_custom_pos(self, pos_i, pos_j=None):
        pos_j = pos_i if pos_j is None else pos_j
        return self._with_unbiased_heads((pos_j[..., None, :] - pos_i[..., :, None]) * self.slopes)
''', mistake="signed distance", key="alibi-signed-distance"),
    Bug("odd_slopes_of_the_next_power", "alibi.alibi_slopes", '''
class AlibiPositionalBias(AlibiPositionalBias):
    @staticmethod
    def _get_slopes(heads):
        closest = 2 ** math.floor(math.log2(heads))
        start, doubled = 2 ** (-8 / closest), 2 ** (-8 / (2 * closest))
        slopes = [start ** (i + 1) for i in range(closest)]
        return slopes + [doubled ** (i + 1) for i in range(2 * closest)][1::2][: heads - closest]
''', mistake="follows the paper's rule for head counts that are not a power of two",
        cascades=("alibi.alibi_attention",)),
]
