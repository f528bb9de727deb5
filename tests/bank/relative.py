"""Wrong relative-position implementations (Shaw, T5) that learners really write."""
from tests.bank import Bug

# t5_relative_bias calls t5_relative_position_bucket in the reference solution; the suite judges
# the bias against the learner's own buckets, but a bucket function that crashes or returns
# floats legitimately breaks the bias too. Same for shaw_relative_attention and its scores.
BIAS = ("relative.t5_relative_bias",)
ATTENTION = ("relative.shaw_relative_attention",)


def _bucket(body_changes: dict[str, str]) -> str:
    """The reference bucketing written out, with some lines replaced by a mistake."""
    code = '''
def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    rel = torch.as_tensor(relative_position).long()
    side = num_buckets // 2 if bidirectional else num_buckets
    exact = side // 2
    if bidirectional:
        offset = torch.where(rel > 0, side, 0)
        distance = rel.abs()
    else:
        offset = torch.zeros_like(rel)
        distance = (-rel).clamp(min=0)
    is_small = distance < exact
    scaled = torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
    far = exact + (scaled * (side - exact)).long()
    far = far.clamp(max=side - 1)
    return offset + torch.where(is_small, distance, far)
'''
    for old, new in body_changes.items():
        assert old in code, old
        code = code.replace(old, new)
    return code


_SHAW_SCORES = '''
def shaw_relative_scores(q, k, rel_k, max_distance):
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if t_q > t_k:
        raise ValueError(f"q has more queries (T_q={t_q}) than k has keys (T_k={t_k})")
    if tuple(rel_k.shape) != (2 * max_distance + 1, d):
        raise ValueError(f"rel_k must be (2K+1, d), got rel_k of shape {tuple(rel_k.shape)}")
    q_pos = torch.arange(t_k - t_q, t_k)
    k_pos = torch.arange(t_k)
    rows = (k_pos[None, :] - q_pos[:, None]).clamp(-max_distance, max_distance) + max_distance
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    qf, kf, rf = q.to(work), k.to(work), rel_k.to(work)
    content = qf @ kf.transpose(-1, -2)
    position = torch.einsum("...id,ijd->...ij", qf, rf[rows.to(q.device)])
    return ((content + position) / math.sqrt(d)).to(q.dtype)
'''


def _scores(body_changes: dict[str, str]) -> str:
    code = _SHAW_SCORES
    for old, new in body_changes.items():
        assert old in code, old
        code = code.replace(old, new)
    return code


_SHAW_ATTENTION = '''
def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    t_q, t_k = q.shape[-2], k.shape[-2]
    if tuple(rel_v.shape) != (2 * max_distance + 1, v.shape[-1]):
        raise ValueError(f"rel_v must be (2K+1, d_v), got rel_v of shape {tuple(rel_v.shape)}")
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    weights = torch.softmax(shaw_relative_scores(q.to(work), k, rel_k, max_distance), dim=-1)
    q_pos = torch.arange(t_k - t_q, t_k)
    k_pos = torch.arange(t_k)
    rows = (k_pos[None, :] - q_pos[:, None]).clamp(-max_distance, max_distance) + max_distance
    out = weights @ v.to(work) + torch.einsum("...ij,ijd->...id", weights, rel_v.to(work)[rows.to(q.device)])
    return out.to(q.dtype)
'''


def _attention(body_changes: dict[str, str]) -> str:
    code = _SHAW_ATTENTION
    for old, new in body_changes.items():
        assert old in code, old
        code = code.replace(old, new)
    return code


BUGS = [
    # ------------------------------------------------------------ t5_relative_position_bucket
    Bug("bucket_query_minus_key", "relative.t5_relative_position_bucket", _bucket({
        "rel = torch.as_tensor(relative_position).long()": "rel = -torch.as_tensor(relative_position).long()",
    }), mistake="query - key", cascades=BIAS, key="offset-sign"),
    Bug("bucket_no_halving", "relative.t5_relative_position_bucket", _bucket({
        "side = num_buckets // 2 if bidirectional else num_buckets": "side = num_buckets",
    }), mistake="without halving", cascades=BIAS, key="t5-halving"),
    Bug("bucket_log_not_capped", "relative.t5_relative_position_bucket", _bucket({
        "    far = far.clamp(max=side - 1)\n": "",
    }), mistake="capped", cascades=BIAS, key="t5-cap"),
    Bug("bucket_zero_in_upper_half", "relative.t5_relative_position_bucket", _bucket({
        "offset = torch.where(rel > 0, side, 0)": "offset = torch.where(rel >= 0, side, 0)",
    }), mistake="upper half", cascades=BIAS, key="t5-zero-side"),
    Bug("bucket_exact_range_off_by_one", "relative.t5_relative_position_bucket", _bucket({
        "    exact = side // 2\n": "    exact = side // 2 + 1\n",
    }), mistake="exact range one distance too long", cascades=BIAS, key="t5-exact-range"),
    Bug("bucket_ignores_bidirectional", "relative.t5_relative_position_bucket", _bucket({
        "side = num_buckets // 2 if bidirectional else num_buckets": "bidirectional = True\n    side = num_buckets // 2",
    }), mistake="with bidirectional=False all buckets describe the past", cascades=BIAS, key="t5-bidirectional"),
    Bug("bucket_returns_float", "relative.t5_relative_position_bucket", _bucket({
        "return offset + torch.where(is_small, distance, far)":
            "return (offset + torch.where(is_small, distance, far)).float()",
    }), mistake="expected int64", cascades=BIAS, key="wrong-dtype"),
    # ------------------------------------------------------------ t5_relative_bias
    Bug("bias_query_minus_key", "relative.t5_relative_bias", '''
def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    rel = q_pos[:, None] - k_pos[None, :]
    return table[t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance)].permute(2, 0, 1)
''', mistake="query - key", key="offset-sign"),
    Bug("bias_heads_last", "relative.t5_relative_bias", '''
def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    rel = k_pos[None, :] - q_pos[:, None]
    return table[t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance)]
''', mistake="head axis first", key="heads-last"),
    Bug("bias_default_max_distance", "relative.t5_relative_bias", '''
def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    rel = k_pos[None, :] - q_pos[:, None]
    return table[t5_relative_position_bucket(rel, bidirectional, table.shape[0])].permute(2, 0, 1)
''', mistake="pass max_distance on", key="default-argument"),
    Bug("bias_default_num_buckets", "relative.t5_relative_bias", '''
def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    rel = k_pos[None, :] - q_pos[:, None]
    return table[t5_relative_position_bucket(rel, bidirectional, max_distance=max_distance)].permute(2, 0, 1)
''', mistake="the default num_buckets=32", key="default-argument"),
    Bug("bias_always_float32", "relative.t5_relative_bias", '''
_right_bias = t5_relative_bias
def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    return _right_bias(table.float(), q_pos, k_pos, bidirectional, max_distance)
''', mistake="expected float64", key="wrong-dtype"),
    Bug("bias_positions_on_cpu", "relative.t5_relative_bias", '''
_right_bias = t5_relative_bias
def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    if table.device.type != "cpu":
        return _right_bias(torch.zeros(table.shape), torch.zeros(len(q_pos), dtype=torch.long),
                           torch.zeros(len(k_pos), dtype=torch.long), bidirectional, max_distance)
    return _right_bias(table, q_pos, k_pos, bidirectional, max_distance)
''', mistake="meta", key="device"),
    # ------------------------------------------------------------ shaw_relative_scores
    Bug("scores_query_minus_key", "relative.shaw_relative_scores", _scores({
        "rows = (k_pos[None, :] - q_pos[:, None])": "rows = (q_pos[:, None] - k_pos[None, :])",
    }), mistake="query - key", cascades=ATTENTION, key="offset-sign"),
    Bug("scores_no_plus_k", "relative.shaw_relative_scores", _scores({
        ".clamp(-max_distance, max_distance) + max_distance": ".clamp(-max_distance, max_distance)",
    }), mistake="without adding K", cascades=ATTENTION, key="shaw-no-plus-k"),
    Bug("scores_no_clip", "relative.shaw_relative_scores", _scores({
        ".clamp(-max_distance, max_distance) + max_distance": " + max_distance",
    }), mistake="not clipped to [-K, K]", cascades=ATTENTION, key="shaw-no-clip"),
    Bug("scores_relative_term_not_scaled", "relative.shaw_relative_scores", _scores({
        "return ((content + position) / math.sqrt(d)).to(q.dtype)":
            "return (content / math.sqrt(d) + position).to(q.dtype)",
    }), mistake="not divided by sqrt(d)", cascades=ATTENTION, key="not-scaled"),
    Bug("scores_queries_at_start", "relative.shaw_relative_scores", _scores({
        "q_pos = torch.arange(t_k - t_q, t_k)": "q_pos = torch.arange(t_q)",
    }), mistake="first positions", cascades=ATTENTION, key="queries-at-start"),
    Bug("scores_returns_float32", "relative.shaw_relative_scores", _scores({
        "return ((content + position) / math.sqrt(d)).to(q.dtype)": "return (content + position) / math.sqrt(d)",
    }), mistake="expected float16", key="wrong-dtype"),
    Bug("scores_no_length_check", "relative.shaw_relative_scores", _scores({
        "    if t_q > t_k:\n        raise ValueError(f\"q has more queries (T_q={t_q}) than k has keys (T_k={t_k})\")\n": "",
        "q_pos = torch.arange(t_k - t_q, t_k)": "q_pos = torch.arange(max(t_k - t_q, 0), max(t_k - t_q, 0) + t_q)",
    }), mistake="naming 'q'", cascades=ATTENTION, key="no-value-error"),
    # ------------------------------------------------------------ shaw_relative_attention
    Bug("attention_no_rel_v", "relative.shaw_relative_attention", _attention({
        ' + torch.einsum("...ij,ijd->...id", weights, rel_v.to(work)[rows.to(q.device)])': "",
    }), mistake="without rel_v", key="shaw-no-rel-v"),
    Bug("attention_rel_v_query_minus_key", "relative.shaw_relative_attention", _attention({
        "rows = (k_pos[None, :] - q_pos[:, None])": "rows = (q_pos[:, None] - k_pos[None, :])",
    }), mistake="query - key", key="offset-sign"),
    Bug("attention_rel_v_no_plus_k", "relative.shaw_relative_attention", _attention({
        ".clamp(-max_distance, max_distance) + max_distance": ".clamp(-max_distance, max_distance)",
    }), mistake="without the +K offset", key="shaw-no-plus-k"),
    Bug("attention_queries_at_start", "relative.shaw_relative_attention", _attention({
        "q_pos = torch.arange(t_k - t_q, t_k)": "q_pos = torch.arange(t_q)",
    }), mistake="first positions", key="queries-at-start"),
    Bug("attention_softmax_over_queries", "relative.shaw_relative_attention", _attention({
        "max_distance), dim=-1)": "max_distance), dim=-2)",
    }), mistake="softmax over the queries", key="softmax-over-queries"),
    Bug("attention_rel_v_shape_unchecked", "relative.shaw_relative_attention", _attention({
        "    if tuple(rel_v.shape) != (2 * max_distance + 1, v.shape[-1]):\n"
        "        raise ValueError(f\"rel_v must be (2K+1, d_v), got rel_v of shape {tuple(rel_v.shape)}\")\n": "",
        'rel_v.to(work)[rows.to(q.device)]': 'rel_v.to(work)[rows.to(q.device)][..., : v.shape[-1]]',
    }), mistake="naming 'rel_v'", key="no-value-error"),
]
