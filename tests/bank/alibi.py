"""Wrong ALiBi implementations that learners really write."""
from tests.bank import Bug, variant

BUGS = [
    Bug("slopes_power_of_two_formula", "alibi.alibi_slopes", '''
def alibi_slopes(n_heads):
    if n_heads < 1:
        raise ValueError(f"n_heads must be >= 1, got n_heads={n_heads}")
    return 2.0 ** (-8.0 * torch.arange(1, n_heads + 1, dtype=torch.float32) / n_heads)
''', mistake="power-of-two formula", key="alibi-power-of-two"),
    Bug("slopes_sorted", "alibi.alibi_slopes", '''
_right_slopes = alibi_slopes
def alibi_slopes(n_heads):
    return torch.sort(_right_slopes(n_heads), descending=True).values
''', mistake="sorted order", key="alibi-sorted"),
    Bug("slopes_even_numbered_extra", "alibi.alibi_slopes", variant("alibi", "alibi_slopes", (
        "geometric(2 * closest)[0::2]", "geometric(2 * closest)[1::2]")),
        mistake="1st, 3rd, 5th", key="alibi-extra-slopes"),
    Bug("slopes_sorted_increasing", "alibi.alibi_slopes", '''
_right_slopes = alibi_slopes
def alibi_slopes(n_heads):
    return torch.sort(_right_slopes(n_heads)).values
''', mistake="sorted in increasing order", key="alibi-sorted"),
    Bug("slopes_float64", "alibi.alibi_slopes", '''
_right_slopes = alibi_slopes
def alibi_slopes(n_heads):
    return _right_slopes(n_heads).double()
''', mistake="expected float32", cascades=("alibi.alibi_attention",), key="wrong-dtype"),
    Bug("slopes_zero_heads_accepted", "alibi.alibi_slopes", '''
_right_slopes = alibi_slopes
def alibi_slopes(n_heads):
    if n_heads < 1:
        return torch.zeros(0)
    return _right_slopes(n_heads)
''', mistake="naming 'n_heads'", key="no-value-error"),
    Bug("bias_positive", "alibi.alibi_bias", '''
def alibi_bias(slopes, q_pos, k_pos):
    return slopes[:, None, None] * (q_pos[:, None] - k_pos[None, :]).abs().to(slopes.dtype)
''', mistake="positive bias", cascades=("alibi.alibi_attention", "alibi.cached_alibi_attention"),
        key="alibi-bias-sign"),
    Bug("bias_signed_distance", "alibi.alibi_bias", '''
def alibi_bias(slopes, q_pos, k_pos):
    return -slopes[:, None, None] * (q_pos[:, None] - k_pos[None, :]).to(slopes.dtype)
''', mistake="signed distance", cascades=("alibi.alibi_attention",), key="alibi-signed-distance"),
    Bug("bias_always_float32", "alibi.alibi_bias", '''
def alibi_bias(slopes, q_pos, k_pos):
    return -slopes.float()[:, None, None] * (q_pos[:, None] - k_pos[None, :]).abs().float()
''', mistake="expected float64", key="wrong-dtype"),
    Bug("attention_no_mask", "alibi.alibi_attention", '''
_right_attention = alibi_attention
def alibi_attention(q, k, v, causal=True):
    return _right_attention(q, k, v, causal=False)
''', mistake="no causal mask", key="alibi-no-mask"),
    Bug("attention_strict_mask", "alibi.alibi_attention", variant("alibi", "alibi_attention", (
        "allowed = k_pos[None, :] <= q_pos[:, None]", "allowed = k_pos[None, :] < q_pos[:, None]")),
        mistake="hides each query's own key", key="mask-strict"),
    Bug("attention_signed_distance", "alibi.alibi_attention", variant("alibi", "alibi_attention", (
        "bias = alibi_bias(alibi_slopes(n_heads).to(q.device), q_pos, k_pos)",
        "bias = -alibi_slopes(n_heads).to(q.device)[:, None, None] * (q_pos[:, None] - k_pos[None, :])")),
        mistake="without the absolute value", key="alibi-signed-distance"),
    Bug("attention_aligned_to_start", "alibi.alibi_attention", '''
def alibi_attention(q, k, v, causal=True):
    n_heads, t_q, d = q.shape[-3:]
    t_k = k.shape[-2]
    if t_q > t_k:
        raise ValueError(f"q has more positions than k")
    pos = torch.arange(t_k, device=q.device)
    bias = alibi_bias(alibi_slopes(n_heads).to(q.device), pos[:t_q], pos)
    scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(d) + bias
    if causal:
        scores = scores.masked_fill(pos[None, :] > pos[:t_q, None], float("-inf"))
    return (torch.softmax(scores, -1) @ v.float()).to(q.dtype)
''', mistake="queries placed at the first positions", key="queries-at-start"),
    Bug("attention_unscaled", "alibi.alibi_attention", '''
_right_attention = alibi_attention
def alibi_attention(q, k, v, causal=True):
    return _right_attention(q * math.sqrt(q.shape[-1]), k, v, causal)
''', mistake="sqrt(d)", key="not-scaled"),
    Bug("attention_naive_slopes", "alibi.alibi_attention", '''
def alibi_attention(q, k, v, causal=True):
    n_heads, t_q, d = q.shape[-3:]
    t_k = k.shape[-2]
    if t_q > t_k:
        raise ValueError(f"q has more positions than k")
    k_pos = torch.arange(t_k, device=q.device)
    q_pos = k_pos[t_k - t_q:]
    slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1, device=q.device) / n_heads)
    scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(d) + alibi_bias(slopes.float(), q_pos, k_pos)
    if causal:
        scores = scores.masked_fill(k_pos[None, :] > q_pos[:, None], float("-inf"))
    return (torch.softmax(scores, -1) @ v.float()).to(q.dtype)
''', mistake="power-of-two slope formula", key="alibi-power-of-two"),
    Bug("attention_returns_float32", "alibi.alibi_attention", '''
_right_attention = alibi_attention
def alibi_attention(q, k, v, causal=True):
    return _right_attention(q.float(), k.float(), v.float(), causal)
''', mistake="expected float16", key="wrong-dtype"),
]


# cached_alibi_attention: one slip each in the reference (tests.bank.variant).
def cached(*replacements):
    return variant("alibi", "cached_alibi_attention", *replacements)


Q_POSITIONS = "q_positions = positions[:, t_past:]                             # next_position_ids: (B, T_new)"
CAUSAL = ("causal = torch.arange(t_past + t_new, device=q.device) <= t_past + torch.arange(t_new, "
          "device=q.device)[:, None]")
SLOPES = "slopes = alibi_slopes(n_heads).to(q.device)"

BUGS += [
    Bug("cached_queries_at_zero", "alibi.cached_alibi_attention", cached(
        (Q_POSITIONS, "q_positions = torch.arange(t_new, device=q.device).expand(q.shape[0], t_new)")),
        mistake="placed at position 0", key="positions-restart"),
    Bug("cached_keys_count_padding", "alibi.cached_alibi_attention", cached(
        ("zip(q_positions, positions)", "zip(q_positions, torch.arange(t_past + t_new).expand_as(positions))")),
        mistake="while query positions count only real tokens", key="positions-inconsistent"),
    Bug("cached_padding_keys_not_masked", "alibi.cached_alibi_attention", cached(
        ("allowed = causal & mask[:, None, None, :]", "allowed = causal")), mistake="padding keys not masked",
        key="padding-not-masked"),
    Bug("cached_strict_mask", "alibi.cached_alibi_attention", cached(
        (CAUSAL, CAUSAL.replace("<=", "<"))), mistake="hides each query's own key", key="mask-strict"),
    Bug("cached_bias_positive", "alibi.cached_alibi_attention", cached(
        ("+ bias.to(work)", "- bias.to(work)")), mistake="wrong sign", key="alibi-bias-sign"),
    Bug("cached_power_of_two_slopes", "alibi.cached_alibi_attention", cached(
        (SLOPES, "slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1, device=q.device) / n_heads)")),
        mistake="power-of-two slope formula", key="alibi-power-of-two"),
    Bug("cached_causal_top_left", "alibi.cached_alibi_attention", cached(
        (CAUSAL, "causal = torch.arange(t_past + t_new, device=q.device) <= torch.arange(t_new, device=q.device)[:, None]")),
        mistake="aligned to the start", key="queries-at-start"),
    Bug("cached_returns_float32", "alibi.cached_alibi_attention", cached(
        ("return (weights @ values.to(work)).to(q.dtype), (keys, values)",
         "return weights @ values.to(work), (keys, values)")), mistake="expected float16", key="wrong-dtype"),
    Bug("cached_no_mask_length_check", "alibi.cached_alibi_attention", cached(
        ("if mask.dim() != 2 or mask.shape[-1] != t_past + t_new:", "if mask.dim() != 2:")),
        mistake="'attention_mask'", key="no-value-error"),
]
