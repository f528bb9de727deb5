"""Section 5, relative positions (Shaw et al. 2018, T5): reference solutions.

This module is the single source of the solution cells in source_notebooks/05_relative:
`python -m course.build` copies each definition into its tagged cell.
"""
import math

import torch


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """T5's bucket id (int64, same shape and device) for each relative position key - query.

    Bidirectional: half the buckets for keys before the query (and the query itself), half
    for keys after it. Causal: all buckets for keys at or before the query; keys after it
    share bucket 0. Within a side of n buckets, offsets 0 .. n/2 - 1 get one bucket each and
    larger offsets share log-spaced buckets up to max_distance; every offset from
    max_distance on lands in the side's last bucket. The log is taken in float32 exactly as
    T5 does, so bucket ids agree with pretrained checkpoints.
    """
    ### BEGIN SOLUTION
    side = num_buckets // 2 if bidirectional else num_buckets
    exact = side // 2
    if exact < 1:
        raise ValueError(f"num_buckets={num_buckets} is too small: each side needs at least 2 buckets")
    if max_distance <= exact:
        raise ValueError(f"max_distance must exceed the {exact} exact buckets, got max_distance={max_distance}")
    rel = torch.as_tensor(relative_position).long()
    if bidirectional:
        offset = torch.where(rel > 0, side, 0)  # keys after the query use the upper half
        distance = rel.abs()
    else:
        offset = torch.zeros_like(rel)
        distance = (-rel).clamp(min=0)  # keys after the query count as distance 0
    # Distances >= exact: float32 log-spacing between exact and max_distance, truncated, capped.
    # (clamp(min=exact) only avoids log(0) on entries that the torch.where below discards.)
    scaled = torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
    far = exact + (scaled * (side - exact)).long()
    far = far.clamp(max=side - 1)
    return offset + torch.where(distance < exact, distance, far)
    ### END SOLUTION


def t5_relative_bias(table, q_pos, k_pos, bidirectional=True, max_distance=128):
    """Bias (H, T_q, T_k): entry [h, i, j] = table[bucket(k_pos[j] - q_pos[i]), h].

    table is (num_buckets, H), one learned scalar per bucket and head; the result has its
    dtype and device, and gradients flow back to the rows used.
    """
    ### BEGIN SOLUTION
    if table.dim() != 2:
        raise ValueError(f"table must be (num_buckets, H), got shape {tuple(table.shape)}")
    if q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError(f"q_pos and k_pos must be 1-D, got shapes {tuple(q_pos.shape)} and {tuple(k_pos.shape)}")
    rel = k_pos.to(table.device).long()[None, :] - q_pos.to(table.device).long()[:, None]
    buckets = t5_relative_position_bucket(rel, bidirectional, table.shape[0], max_distance)
    return table[buckets].permute(2, 0, 1)
    ### END SOLUTION


def shaw_relative_index(t_q, t_k, max_distance):
    """LongTensor (t_q, t_k): the rel_k row clip(j - i, -K, K) + K for query i, key j.

    Queries are the last t_q of the t_k positions: query i sits at t_k - t_q + i.
    """
    ### BEGIN SOLUTION
    if t_q > t_k:
        raise ValueError(f"more queries (t_q={t_q}) than keys (t_k={t_k}): queries take the last key positions")
    q_pos = torch.arange(t_k - t_q, t_k)
    k_pos = torch.arange(t_k)
    offset = k_pos[None, :] - q_pos[:, None]
    return offset.clamp(-max_distance, max_distance) + max_distance
    ### END SOLUTION


def shaw_relative_scores(q, k, rel_k, max_distance):
    """Scores (..., T_q, T_k) = (q_i . k_j + q_i . rel_k[clip(j - i, -K, K) + K]) / sqrt(d).

    q (..., T_q, d), k (..., T_k, d), rel_k (2K + 1, d) with K = max_distance; queries are
    the last T_q positions. Computed in float32 (float64 for float64 q); returns q's dtype.
    """
    ### BEGIN SOLUTION
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    if max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got max_distance={max_distance}")
    if k.shape[-1] != d:
        raise ValueError(f"q and k must share their last dimension, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if t_q > t_k:
        raise ValueError(f"q has more queries (T_q={t_q}) than k has keys (T_k={t_k})")
    if tuple(rel_k.shape) != (2 * max_distance + 1, d):
        raise ValueError(f"rel_k must have shape (2*max_distance+1, d) = ({2 * max_distance + 1}, {d}), "
                         f"got rel_k of shape {tuple(rel_k.shape)}")
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    qw, kw, rw = q.to(work), k.to(work), rel_k.to(device=q.device, dtype=work)
    index = shaw_relative_index(t_q, t_k, max_distance).to(q.device)
    content = qw @ kw.transpose(-1, -2)
    # q_i . rel_k[r] for every row r once, (..., T_q, 2K+1); then pick row index[i, j] for key j.
    per_row = qw @ rw.T
    position = per_row.gather(-1, index.expand(*per_row.shape[:-1], t_k))
    return ((content + position) / math.sqrt(d)).to(q.dtype)
    ### END SOLUTION


def shaw_relative_attention(q, k, v, rel_k, rel_v, max_distance):
    """Attention (..., T_q, d_v) with Shaw relative keys and values, no mask.

    Weights are the softmax over keys of shaw_relative_scores; the output for query i is
    sum_j w_ij (v_j + rel_v[clip(j - i, -K, K) + K]). Returns q's dtype.
    """
    ### BEGIN SOLUTION
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"k and v must have as many positions, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if max_distance >= 0 and tuple(rel_v.shape) != (2 * max_distance + 1, v.shape[-1]):
        raise ValueError(f"rel_v must have shape (2*max_distance+1, d_v) = ({2 * max_distance + 1}, {v.shape[-1]}), "
                         f"got rel_v of shape {tuple(rel_v.shape)}")
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = shaw_relative_scores(q.to(work), k, rel_k, max_distance)
    weights = torch.softmax(scores, dim=-1)
    index = shaw_relative_index(q.shape[-2], k.shape[-2], max_distance).to(q.device)
    # Add up each query's weights per rel_v row, (..., T_q, 2K+1), then mix the rows once.
    per_row = torch.zeros(*weights.shape[:-1], 2 * max_distance + 1, dtype=work, device=q.device)
    per_row.scatter_add_(-1, index.expand_as(weights), weights)
    out = weights @ v.to(work) + per_row @ rel_v.to(device=q.device, dtype=work)
    return out.to(q.dtype)
    ### END SOLUTION
