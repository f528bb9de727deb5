"""The lab's two tasks: recall of repeated segments in noise, and a character-level LM.

Every sequence starts with a BOS token, as in real language models. (It matters for NoPE:
attending to BOS is how a model without positions can count how far it is into the
sequence; Kazemnejad et al. 2023 use it in their construction.)

Recall: random *noise* tokens with a few segments of SEG distinct *symbols* hidden in
them, each segment twice. In the second copy every symbol after the first is
predictable, and only those answers are scored. Solving it takes position: a "previous
token" head that tags each symbol with the one before it, and an induction head that
finds the earlier copy of the current symbol and reads what followed it.

Passkey probe (same vocabulary): one segment, the needle, at a chosen depth of a noise
sequence, and its first symbol (the key) again at the end: the model must continue with
the other SEG - 1 symbols (the passkey).

Character LM: the source code of a fixed list of pure-Python standard-library modules
(text that ships with every Python; nothing is downloaded), mapped to printable ASCII.
"""
from __future__ import annotations

import importlib
import inspect
import random

import torch

# --------------------------------------------------------------------------------------
# Associative recall: repeated segments in noise
# --------------------------------------------------------------------------------------

N_NOISE, N_SYMBOLS, SEG = 32, 128, 4
NOISE = range(0, N_NOISE)
SYMBOLS = range(N_NOISE, N_NOISE + N_SYMBOLS)
RECALL_BOS = N_NOISE + N_SYMBOLS
RECALL_VOCAB = RECALL_BOS + 1
IGNORE = -100  # target id that cross_entropy skips
SEGMENTS_PER_TOKEN = 1 / 16  # a sequence of length T holds between 1 and T/16 segments


def _rng(generator: torch.Generator | None) -> random.Random:
    return random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))


def recall_batch(batch: int, length: int, generator: torch.Generator | None = None):
    """(tokens, targets), both (batch, length) int64.

    Each row is BOS, then noise with n segments of SEG distinct symbols hidden in it, each segment
    twice, at random (unaligned) places. In the second copy every symbol after the first
    is predictable: targets[b, t] is the token that must follow tokens[b, t] there, IGNORE
    elsewhere. Symbols are never reused within a row, so the earlier copy is unambiguous.
    n is uniform in 1 .. length/16, so the density of segments is the same at every
    length, and the distance between the two copies ranges over the whole sequence.
    """
    rng = _rng(generator)
    length -= 1  # room for BOS
    max_segments = max(1, int((length + 1) * SEGMENTS_PER_TOKEN))
    if max_segments * SEG > N_SYMBOLS:
        raise ValueError(f"length {length} needs more than {N_SYMBOLS} symbols")
    tokens, targets = [], []
    for _ in range(batch):
        n = rng.randint(1, max_segments)
        symbols = rng.sample(SYMBOLS, n * SEG)
        segments = [symbols[i * SEG:(i + 1) * SEG] for i in range(n)]
        # 2n segment items among (length - 2n SEG) noise items, in random order
        items = [None] * (length - 2 * n * SEG + 2 * n)
        picks = rng.sample(range(len(items)), 2 * n)
        owner = [j for j in range(n) for _ in (0, 1)]
        rng.shuffle(owner)
        for slot, j in zip(sorted(picks), owner):
            items[slot] = j
        row, target, seen = [], [], set()
        for item in items:
            if item is None:
                row.append(rng.randrange(N_NOISE))
                target.append(IGNORE)
            else:
                seg = segments[item]
                row.extend(seg)
                repeat = item in seen
                target.extend(seg[1:] + [IGNORE] if repeat else [IGNORE] * SEG)
                seen.add(item)
        tokens.append([RECALL_BOS] + row)
        targets.append([IGNORE] + target)
    return torch.tensor(tokens), torch.tensor(targets)


def passkey_batch(batch: int, length: int, depth: float, generator: torch.Generator | None = None):
    """(tokens, answer_start, answer): one needle segment at `depth` of a noise sequence.

    depth 0 puts the needle right after BOS, depth 1 SEG noise tokens before the query
    (copies back to back hardly ever occur in training, so they are left out). The query
    (the needle's first symbol, its key) sits at length - SEG, followed by the SEG - 1
    passkey symbols; answer (batch, SEG - 1) holds them. Scoring teacher-forces the
    answer and checks the SEG - 1 predictions made from answer_start on.
    """
    rng = _rng(generator)
    at = needle_position(length, depth)
    tokens, answers = [], []
    for _ in range(batch):
        needle = rng.sample(SYMBOLS, SEG)
        row = [RECALL_BOS] + [rng.randrange(N_NOISE) for _ in range(length - 1)]
        row[at:at + SEG] = needle
        row[length - SEG:] = needle
        tokens.append(row)
        answers.append(needle[1:])
    return torch.tensor(tokens), length - SEG, torch.tensor(answers)


def needle_position(length: int, depth: float) -> int:
    """Where the needle starts: 1 (right after BOS) at depth 0; at depth 1 it ends SEG
    tokens before the query."""
    return 1 + round(depth * (length - 1 - 3 * SEG))


# --------------------------------------------------------------------------------------
# Character-level language model
# --------------------------------------------------------------------------------------

# Pure-Python modules with a stable, English-heavy source (docstrings and comments).
TEXT_MODULES = (
    "textwrap", "difflib", "argparse", "fractions", "calendar", "shlex", "string",
    "heapq", "bisect", "statistics", "gettext", "configparser", "tokenize", "pprint",
    "dataclasses", "enum", "functools", "inspect", "json.decoder", "json.encoder",
    "csv", "ftplib", "smtplib", "imaplib", "poplib", "zipfile", "tarfile", "shutil",
    "tempfile", "glob", "fnmatch", "locale", "optparse", "getopt", "cmd", "code",
    "codeop", "pdb", "bdb", "pydoc", "doctest", "unittest.case", "unittest.mock",
    "logging", "logging.handlers", "email.message", "email.utils", "http.client",
    "http.server", "urllib.parse", "urllib.request", "xml.dom.minidom", "ast", "dis",
    "random", "decimal", "datetime", "typing", "collections", "threading", "subprocess",
)
CHARS = "\n" + "".join(chr(c) for c in range(32, 127))  # newline and printable ASCII
UNKNOWN = "?"
CHAR_BOS = len(CHARS)
CHAR_VOCAB = CHAR_BOS + 1
_INDEX = {c: i for i, c in enumerate(CHARS)}


def encode(text: str) -> torch.Tensor:
    unknown = _INDEX[UNKNOWN]
    return torch.tensor([_INDEX.get(c, unknown) for c in text.replace("\t", "    ")], dtype=torch.int64)


def decode(ids) -> str:
    return "".join(CHARS[int(i)] if int(i) < len(CHARS) else "<bos>" for i in ids)


def corpus_text(modules=TEXT_MODULES) -> str:
    """The concatenated source of the modules that exist in this Python (in this order)."""
    parts = []
    for name in modules:
        try:
            parts.append(inspect.getsource(importlib.import_module(name)))
        except (ImportError, OSError, TypeError):  # missing or built without source
            continue
    return "\n".join(parts)


def char_corpus(heldout_fraction: float = 0.1):
    """(train ids, heldout ids, description): the corpus split at a module boundary.

    The held-out part is the last modules of the list, so evaluation text was never seen.
    """
    text = corpus_text()
    ids = encode(text)
    cut = int(len(ids) * (1 - heldout_fraction))
    cut = text.rfind("\n", 0, cut) + 1 or cut
    info = {"chars": len(ids), "train_chars": cut, "heldout_chars": len(ids) - cut, "modules": list(TEXT_MODULES)}
    return ids[:cut], ids[cut:], info


def with_bos(chunk: torch.Tensor):
    """Windows (n, length) -> tokens [BOS, c0 .. c_{length-2}] and targets [c0 .. c_{length-1}]."""
    bos = torch.full((chunk.shape[0], 1), CHAR_BOS)
    return torch.cat((bos, chunk[:, :-1]), dim=1), chunk


def char_batch(ids: torch.Tensor, batch: int, length: int, generator: torch.Generator | None = None):
    """(tokens, targets): random windows of the text, BOS first, each token's next character."""
    starts = torch.randint(0, len(ids) - length, (batch,), generator=generator)
    return with_bos(ids[starts[:, None] + torch.arange(length)])


def char_eval_windows(ids: torch.Tensor, count: int, length: int):
    """`count` evenly spaced, non-random windows of the held-out text (tokens, targets)."""
    last = len(ids) - length
    if last < 0:
        raise ValueError(f"held-out text ({len(ids)} chars) is shorter than {length}")
    starts = torch.linspace(0, last, count).long()
    return with_bos(ids[starts[:, None] + torch.arange(length)])


# --------------------------------------------------------------------------------------
# Showing a recall sequence
# --------------------------------------------------------------------------------------

GLYPHS = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
          "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΦΨΩабвгдежзийклмнопрстуфхцчшщъыьэюя")
assert len(GLYPHS) == N_SYMBOLS


def render_recall(tokens, targets=None, width: int = 64) -> str:
    """One character per token: BOS '^', noise '·', each symbol its own glyph.

    With targets, a second line marks with '*' the positions whose next token is scored.
    """
    def glyph(t):
        t = int(t)
        return "^" if t == RECALL_BOS else "·" if t < N_NOISE else GLYPHS[t - N_NOISE]

    line = "".join(glyph(t) for t in tokens)
    marks = None if targets is None else "".join("*" if int(t) != IGNORE else " " for t in targets)
    out = []
    for i in range(0, len(line), width):
        out.append(line[i:i + width])
        if marks is not None:
            out.append(marks[i:i + width].rstrip())
    return "\n".join(out)
