"""Wrong implementations of section 1 (intuition) that learners really write."""
from tests.bank import Bug


def _attention(scores_line, *, mask_line='scores = scores.masked_fill(~mask, float("-inf"))',
               fix_line="weights = weights.nan_to_num(0.0)", softmax_dim=-1, work="torch.float32"):
    """An attention body with one line swapped for a mistake (the rest is right)."""
    return f'''
def attention(q, k, v, mask=None, bias=None):
    if k.shape[-1] != q.shape[-1]:
        raise ValueError("q and k must have the same last dimension")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError("v must have one row per key")
    q_dtype = q.dtype
    work = torch.float64 if q.dtype == torch.float64 else {work}
    q, k, v = q.to(work), k.to(work), v.to(work)
    {scores_line}
    if bias is not None:
        scores = scores + bias.to(work)
    if mask is not None:
        {mask_line}
    weights = torch.softmax(scores, dim={softmax_dim})
    {fix_line}
    out = weights @ v
    return out.to(q_dtype), weights.to(q_dtype)
'''


SQRT_SCORES = "scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])"

BUGS = [
    # ---------------------------------------------------------------- attention
    Bug("attention_scale_by_d", "intuition.attention",
        _attention("scores = q @ k.transpose(-1, -2) / q.shape[-1]"), mistake="divided by d instead of sqrt(d)",
        key="scale-by-d"),
    Bug("attention_unscaled", "intuition.attention",
        _attention("scores = q @ k.transpose(-1, -2)"), mistake="not divided by sqrt(d)", key="not-scaled"),
    Bug("attention_nan_rows", "intuition.attention",
        _attention(SQRT_SCORES, fix_line="pass"), mistake="NaN", key="nan-rows"),
    Bug("attention_mask_inverted", "intuition.attention",
        _attention(SQRT_SCORES, mask_line='scores = scores.masked_fill(mask, float("-inf"))'),
        mistake="mask inverted", key="mask-inverted"),
    Bug("attention_mask_after_softmax", "intuition.attention", '''
_right_attention = attention
def attention(q, k, v, mask=None, bias=None):
    out, weights = _right_attention(q, k, v, bias=bias)
    if mask is not None:
        weights = weights * mask
        out = weights @ v
    return out, weights
''', mistake="after the softmax", key="mask-after-softmax"),
    Bug("attention_mask_times_scores", "intuition.attention",
        _attention(SQRT_SCORES, mask_line="scores = scores * mask"), mistake="instead of -inf",
        key="mask-after-softmax"),
    Bug("attention_softmax_over_queries", "intuition.attention",
        _attention(SQRT_SCORES, softmax_dim=-2), mistake="over the queries", key="softmax-over-queries"),
    Bug("attention_half_precision_scores", "intuition.attention",
        _attention(SQRT_SCORES, work="q.dtype"), mistake="half precision", key="half-precision-scores"),
    Bug("attention_returns_float32", "intuition.attention", '''
_right_attention = attention
def attention(q, k, v, mask=None, bias=None):
    return _right_attention(q.float(), k.float(), v.float(), mask, bias)
''', mistake="expected float16", key="wrong-dtype"),
    Bug("attention_in_place_bias", "intuition.attention", '''
_right_attention = attention
def attention(q, k, v, mask=None, bias=None):
    if bias is not None and mask is not None:
        bias.masked_fill_(~mask, float("-inf"))
    return _right_attention(q, k, v, mask, bias)
''', mistake="in place", key="in-place"),
    Bug("attention_no_shape_check", "intuition.attention", '''
def attention(q, k, v, mask=None, bias=None):
    d = min(q.shape[-1], k.shape[-1])
    scores = q[..., :d].float() @ k[..., :d].float().transpose(-1, -2) / math.sqrt(d)
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, -1).nan_to_num(0.0)
    return (weights @ v.float()[..., : scores.shape[-1], :]).to(q.dtype), weights.to(q.dtype)
''', mistake="expected a ValueError", key="no-value-error"),
    # ---------------------------------------------------------------- causal_mask
    Bug("causal_aligned_to_start", "intuition.causal_mask", '''
def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    if t_q < 1:
        raise ValueError("t_q must be at least 1")
    if t_k < t_q:
        raise ValueError("t_k must be at least t_q")
    return torch.ones(t_q, t_k, dtype=torch.bool).tril()
''', mistake="aligned to the start", key="queries-at-start"),
    Bug("causal_strict", "intuition.causal_mask", '''
def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    if t_q < 1:
        raise ValueError("t_q must be at least 1")
    if t_k < t_q:
        raise ValueError("t_k must be at least t_q")
    return torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q - 1)
''', mistake="must see its own position", key="mask-strict"),
    Bug("causal_inverted", "intuition.causal_mask", '''
def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    if t_q < 1:
        raise ValueError("t_q must be at least 1")
    if t_k < t_q:
        raise ValueError("t_k must be at least t_q")
    return torch.ones(t_q, t_k, dtype=torch.bool).triu(t_k - t_q + 1)
''', mistake="inverted mask", key="mask-inverted"),
    Bug("causal_float", "intuition.causal_mask", '''
_right_causal_mask = causal_mask
def causal_mask(t_q, t_k=None):
    return _right_causal_mask(t_q, t_k).float()
''', mistake="expected bool", key="wrong-dtype"),
    Bug("causal_no_error", "intuition.causal_mask", '''
def causal_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.arange(t_k)[None, :] <= torch.arange(t_k - t_q, t_k)[:, None]
''', mistake="naming 't_k'", key="no-value-error"),
    # ---------------------------------------------------------------- shift_gap
    Bug("gap_signed", "intuition.shift_gap", '''
def shift_gap(score_fn, q, k, positions, shift):
    moved = positions + shift
    return float((score_fn(q, k, moved, moved) - score_fn(q, k, positions, positions)).max())
''', mistake="take the absolute value first", key="gap-reduction"),
    Bug("gap_mean", "intuition.shift_gap", '''
def shift_gap(score_fn, q, k, positions, shift):
    moved = positions + shift
    return float((score_fn(q, k, moved, moved) - score_fn(q, k, positions, positions)).abs().mean())
''', mistake="the mean absolute difference", key="gap-reduction"),
    Bug("gap_queries_only", "intuition.shift_gap", '''
def shift_gap(score_fn, q, k, positions, shift):
    return float((score_fn(q, k, positions + shift, positions) - score_fn(q, k, positions, positions)).abs().max())
''', mistake="query positions only", key="gap-queries-only"),
    Bug("gap_in_place", "intuition.shift_gap", '''
def shift_gap(score_fn, q, k, positions, shift):
    before = score_fn(q, k, positions, positions)
    positions += shift
    return float((score_fn(q, k, positions, positions) - before).abs().max())
''', mistake="in place", key="in-place"),
    Bug("gap_tensor", "intuition.shift_gap", '''
def shift_gap(score_fn, q, k, positions, shift):
    moved = positions + shift
    return (score_fn(q, k, moved, moved) - score_fn(q, k, positions, positions)).abs().max()
''', mistake="Python float", key="python-float"),
]
