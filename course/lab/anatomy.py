"""Looking inside the lab's trained models: which heads do what, how far they reach, what a
learned position table holds and which rotary pairs carry the attention (notebook 09).

Every function takes plain tensors or a ``TinyDecoder`` and returns plain tensors; the
notebook draws them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from course.lab.model import TinyDecoder


@torch.no_grad()
def attention_maps(model: TinyDecoder, tokens: torch.Tensor) -> list[torch.Tensor]:
    """One (B, H, T, T) tensor of attention weights per layer for `tokens` (B, T)."""
    maps = []
    try:
        for block in model.blocks:
            block.attn.keep_weights = True
        model(tokens)
        maps = [block.attn.last_weights for block in model.blocks]
    finally:
        for block in model.blocks:
            block.attn.keep_weights = False
    return maps


@torch.no_grad()
def queries_and_keys(model: TinyDecoder, tokens: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, the (q, k) each head used, (B, H, T, head_dim), after any rotation."""
    attention_maps(model, tokens)
    return [block.attn.last_qk for block in model.blocks]


def previous_token_score(weights: torch.Tensor, offset: int = 1) -> torch.Tensor:
    """(H,): mean weight each head puts on the key `offset` tokens before the query
    (queries offset .. T-1). 1 for a perfect previous-token head (offset 1)."""
    return weights.diagonal(offset=-offset, dim1=-2, dim2=-1).mean(dim=(0, -1))


def lookback_profile(weights: torch.Tensor, offsets=range(0, 9)) -> torch.Tensor:
    """(H, len(offsets)): ``previous_token_score`` at each offset. A head with one bright
    column is a look-back head at that offset (offset 1: a previous-token head)."""
    return torch.stack([previous_token_score(weights, o) for o in offsets], dim=-1)


def earlier_copies(tokens: torch.Tensor, where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, queries, earlier): for every query position marked in `where` (B, T) whose
    token occurred before, the first earlier position of that token."""
    rows, queries, earlier = [], [], []
    for r, c in where.nonzero().tolist():
        before = (tokens[r, :c] == tokens[r, c]).nonzero()
        if len(before):
            rows.append(r)
            queries.append(c)
            earlier.append(int(before[0]))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(queries, dtype=torch.long), torch.tensor(earlier, dtype=torch.long)


def induction_score(weights: torch.Tensor, tokens: torch.Tensor, where: torch.Tensor, offset: int = 1) -> torch.Tensor:
    """(H,): mean weight on the key `offset` tokens after the earlier copy of the query's token.

    With offset 1 that is where a textbook induction head looks: the token that followed
    last time is the best guess for what comes next. `where` (B, T) marks the queries to
    score: for recall, the positions whose next token is scored (``targets != IGNORE``).
    Keys past a query are never attended, so such pairs count as weight 0.
    """
    rows, queries, earlier = earlier_copies(tokens, where)
    if len(rows) == 0:
        raise ValueError("no query position has an earlier copy of its token")
    keys = earlier + offset
    inside = (keys >= 0) & (keys <= queries)
    picked = weights[rows, :, queries, keys.clamp(0, weights.shape[-1] - 1)]
    return (picked * inside[:, None]).mean(dim=0)


def copy_profile(weights: torch.Tensor, tokens: torch.Tensor, where: torch.Tensor, offsets=range(-1, 7)) -> torch.Tensor:
    """(H, len(offsets)): ``induction_score`` at each offset from the earlier copy. An
    induction-like head has one bright column: it finds the earlier copy and reads the
    token a fixed distance after it."""
    return torch.stack([induction_score(weights, tokens, where, o) for o in offsets], dim=-1)


def mean_distance(weights: torch.Tensor, from_position: int = 0) -> torch.Tensor:
    """(H,): average of sum_j w[i, j] * (i - j), how far back each head looks, over the
    queries i >= from_position."""
    T = weights.shape[-1]
    pos = torch.arange(T, dtype=weights.dtype)
    distance = (pos[:, None] - pos[None, :]).clamp(min=0)
    per_query = (weights * distance).sum(-1)  # (B, H, T)
    return per_query[..., from_position:].mean(dim=(0, -1))


def initial_model(model: TinyDecoder, seed: int) -> TinyDecoder:
    """The same architecture with the weights it had before training (``training.train``
    seeds torch with the run's seed, then builds the model)."""
    torch.manual_seed(seed)
    return TinyDecoder(model.cfg)


def row_similarity(table: torch.Tensor) -> torch.Tensor:
    """(n, n) cosine similarity of the rows of a position table (n, d)."""
    unit = F.normalize(table.detach().float(), dim=-1)
    return unit @ unit.T


def row_change(table: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """(n,): how far training moved each row (Euclidean norm of trained - initial)."""
    return (table.detach() - initial.detach()).norm(dim=-1)


def pair_energy(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(H, head_dim/2): share of each half-split rotary pair (k, k + d/2) in a head's
    query-key products, as mean |q_pair| * mean |k_pair|, normalised per head.

    The rotation keeps every pair's norm, so this is the same before and after RoPE: it
    says which frequencies a head *can* use at all; a pair with no energy is ignored
    however it turns.
    """
    half = q.shape[-1] // 2

    def pair_norms(x):  # (B, H, T, d) -> (H, d/2)
        return (x[..., :half] ** 2 + x[..., half:] ** 2).sqrt().mean(dim=(0, 2))

    energy = pair_norms(q) * pair_norms(k)
    return energy / energy.sum(-1, keepdim=True)
