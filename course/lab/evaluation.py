"""Evaluating a trained model at 1x to 8x its training length.

Every evaluation is deterministic (fixed generator seeds, fixed held-out windows), so two
models are always compared on the same sequences.

* recall: accuracy of the recalled values, overall and per bin of query position and of
  distance between the two occurrences of the key.
* chars: cross-entropy in bits per character on held-out text, overall and per bin of
  position, two ways. Non-overlapping windows score every token of each window, so the
  first tokens of a window are predicted from almost no context. The sliding window
  (stride a quarter of the window) scores only the last quarter of each window: every
  scored token has at least three quarters of a window of context, and every length
  scores the very same characters (blocks spread over the held-out text).
* passkey (recall models): fraction of needles retrieved (all SEG - 1 symbols after the
  key right, teacher-forced), for each depth and length.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course.lab import tasks

MULTIPLES = (1, 2, 4, 8)
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
RECALL_BIN, CHAR_BIN = 16, 8
EVAL_SEED = 1234
SLIDING_STRIDE = 4  # the sliding window advances by a quarter of its length
SLIDING_BLOCKS, SLIDING_WIDTH = 256, 128  # it scores 256 blocks of 128 characters (32768 in all)
SLIDING_ROOM = 8 * 64  # no block starts before the longest window fits


def _binned(values: torch.Tensor, where: torch.Tensor, width: int, n_bins: int) -> list:
    """Mean of `values` per bin of `where` (bin i covers [i*width, (i+1)*width)); None if empty."""
    bins = (where // width).clamp(max=n_bins - 1)
    total = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, values.double())
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, torch.ones_like(values, dtype=torch.float64))
    return [round(float(t / c), 4) if c > 0 else None for t, c in zip(total, count)]


@torch.no_grad()
def _logits(model, tokens: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    return torch.cat([model(tokens[i: i + chunk]) for i in range(0, len(tokens), chunk)])


@torch.no_grad()
def eval_recall(model, length: int, tokens_budget: int = 65536) -> dict:
    """Recall accuracy at one length: overall, by position, by distance to the first copy.

    tokens_budget / length sequences: every length gets about as many answers per position bin.
    """
    sequences = max(1, tokens_budget // length)
    g = torch.Generator().manual_seed(EVAL_SEED + length)
    tokens, targets = tasks.recall_batch(sequences, length, g)
    predicted = _logits(model, tokens).argmax(-1)
    rows, cols = (targets != tasks.IGNORE).nonzero(as_tuple=True)
    correct = (predicted[rows, cols] == targets[rows, cols]).float()
    # how far back the first copy of the current symbol is (every symbol occurs at most
    # twice in a row, so the first position is the earlier copy)
    first = []
    for r in range(sequences):
        where = {}
        for t, tok in enumerate(tokens[r].tolist()):
            where.setdefault(tok, t)
        first.append(where)
    distance = torch.tensor([c - first[r][tokens[r, c].item()] for r, c in zip(rows.tolist(), cols.tolist())])
    n_bins = length // RECALL_BIN
    return {"accuracy": round(correct.mean().item(), 4), "answers": len(correct),
            "by_position": _binned(correct, cols, RECALL_BIN, n_bins),
            "by_distance": _binned(correct, distance, RECALL_BIN, n_bins)}


@torch.no_grad()
def eval_chars(model, heldout: torch.Tensor, length: int, tokens_budget: int = 65536) -> dict:
    """Held-out bits per character at one length: overall and by position."""
    windows = max(1, tokens_budget // length)
    tokens, targets = tasks.char_eval_windows(heldout, windows, length)
    logits = _logits(model, tokens)
    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(windows, length)
    bits = nats / math.log(2)
    positions = torch.arange(length).expand(windows, -1)
    return {"bits_per_char": round(bits.mean().item(), 4),
            "bits_last_quarter": round(bits[:, -max(1, length // 4):].mean().item(), 4),
            "by_position": _binned(bits.flatten(), positions.flatten(), CHAR_BIN, length // CHAR_BIN)}


def scored_blocks(heldout: torch.Tensor, blocks: int = SLIDING_BLOCKS, width: int = SLIDING_WIDTH) -> torch.Tensor:
    """Start of each block of `width` characters the sliding window scores: evenly spaced
    over the held-out text, after room for the longest window."""
    return torch.linspace(SLIDING_ROOM, len(heldout) - width, blocks).long()


def sliding_windows(heldout: torch.Tensor, length: int, stride: int, starts: torch.Tensor, width: int = SLIDING_WIDTH):
    """(tokens, targets) of the windows that score the blocks [start, start + width).

    A window ending at e holds tokens [BOS, c(e-length) .. c(e-2)] and targets
    c(e-length) .. c(e-1), of which only the last `stride` are scored; the windows of a
    block end at start + stride, start + 2 stride, ... start + width.
    """
    if width % stride or int(starts.min()) < length - stride:
        raise ValueError(f"blocks of {width} at {int(starts.min())} cannot be scored by windows of {length} "
                         f"moving by {stride}")
    ends = (starts[:, None] + stride * torch.arange(1, width // stride + 1)).flatten()
    return tasks.with_bos(heldout[ends[:, None] - length + torch.arange(length)])


@torch.no_grad()
def eval_chars_sliding(model, heldout: torch.Tensor, length: int, blocks: int = SLIDING_BLOCKS,
                       width: int = SLIDING_WIDTH) -> dict:
    """Held-out bits per character with a sliding window: the same characters at every
    length (see ``scored_blocks``), each predicted with at least length - stride before it."""
    stride = length // SLIDING_STRIDE
    tokens, targets = sliding_windows(heldout, length, stride, scored_blocks(heldout, blocks, width), width)
    logits = _logits(model, tokens)[:, -stride:]
    nats = F.cross_entropy(logits.flatten(0, 1), targets[:, -stride:].flatten(), reduction="none")
    return {"bits_per_char": round((nats / math.log(2)).mean().item(), 4), "stride": stride,
            "min_context": length - stride, "scored": len(nats)}


@torch.no_grad()
def eval_passkey(model, length: int, depths=DEPTHS, trials: int = 100) -> list:
    """Fraction of needles retrieved (every passkey symbol right), one number per depth."""
    out = []
    for i, depth in enumerate(depths):
        g = torch.Generator().manual_seed(EVAL_SEED + 7 * length + i)
        tokens, start, answer = tasks.passkey_batch(trials, length, depth, g)
        predicted = _logits(model, tokens)[:, start: start + answer.shape[1]].argmax(-1)
        out.append(round((predicted == answer).all(-1).float().mean().item(), 4))
    return out


def evaluate(model, task: str, train_len: int, heldout: torch.Tensor | None = None, multiples=MULTIPLES) -> dict:
    """Every metric of `task` at each multiple of the training length, keyed by length."""
    model.eval()
    result = {}
    for m in multiples:
        length = m * train_len
        if task == "recall":
            entry = eval_recall(model, length)
            entry["passkey"] = eval_passkey(model, length)
        else:
            entry = eval_chars(model, heldout, length)
            entry["sliding"] = eval_chars_sliding(model, heldout, length)
        result[str(length)] = entry
    return result
