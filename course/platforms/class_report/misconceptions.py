"""Reading the grader's feedback: failed checks and the named misconceptions they show."""
from __future__ import annotations

import re
from dataclasses import dataclass, field



# -- known misconceptions ---------------------------------------------------------------------
# key -> (label, stable phrases). A "Your output matches X." sentence belongs to the first entry
# one of whose phrases is in X. Phrases are taken from the hidden suites' closest_mistake names
# (grader_tests/) and the bank of wrong implementations (tests/bank/); order matters where one
# phrase contains another.
MISCONCEPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    # RoPE and the frequency ladder
    "pairing-convention": ("pairing convention swapped: interleaved (2k, 2k+1) vs half-split (k, k + d/2)",
                           ("other pairing convention", "concatenated layout", "blocks on pairs (j, j + d/2)")),
    "rotation-direction": ("rotating the other way (sign of the sine terms)", ("rotating the other way",)),
    "matrix-transposed": ("rotation matrix transposed", ("R.T instead of R", "the transpose of M")),
    "rotary-dim": ("frequencies over the head dimension d instead of rotary_dim", ("instead of rotary_dim",)),
    "exponent-k-over-d": ("frequency exponent k/d instead of 2k/d (k counts pairs)",
                          ("base^(-k/d)", "base^(-j/d)", "the exponent k/d")),
    "frequency-vs-wavelength": ("frequencies, angular frequencies and wavelengths confused",
                                ("base^(+2k/d)", "frequencies are their inverses", "without the factor 2*pi",
                                 "the angular frequencies", "cycles per position")),
    "half-precision": ("angles computed in half precision", ("half precision", "in float16")),
    "sin-cos-swapped": ("sine and cosine swapped", ("sine and cosine swapped",)),
    "default-argument": ("an argument not passed on (its default used instead)",
                         ("the default base 10000", "the default max_distance", "the default bidirectional")),
    # positions
    "positions-restart": ("positions restarting at 0 for new tokens (decoding with a cache)",
                          ("positions restarting at 0", "ids restarting at 0", "numbered from 0 in every call",
                           "placed at position 0 in every call")),
    "positions-inconsistent": ("prefill and decode (or queries and keys) numbered differently: padding counted "
                               "in one, not the other",
                               ("while the prefill counted only real tokens",
                                "while query positions count only real tokens")),
    "padding-not-masked": ("padding keys not masked (the attention_mask must remove them)", ("padding keys not masked",)),
    "cache-rerotated": ("cached keys rotated again (a RoPE cache holds them already rotated)", ("rotated a second time",)),
    "positions-ignored": ("positions ignored: 0, 1, 2, ... used instead",
                          ("ignoring `positions`", "ignoring the given positions", "ignoring position_ids",
                           "arange(T) in every row")),
    "padding-ids": ("padding given position ids (it must get 0 and not shift real tokens)",
                    ("without zeroing the padding", "padding set to 1", "repeats the last id")),
    "count-from-one": ("positions counted from 1 instead of 0", ("counting from 1", "positions 1..t")),
    "counts-padding": ("padding counted as tokens", ("counting padding", "the row length T (counting padding)")),
    "off-by-one": ("next position off by one", ("off by one",)),
    "ids-clamped": ("out-of-range ids clamped or wrapped silently instead of rejected",
                    ("clamped into", "clamping the ids", "negative id", "wrapping around")),
    "interpolation": ("position interpolation ratio or range wrong",
                      ("target_len <= train_len", "inverted ratio", "rounded or integer-divided",
                       "(train_len - 1) / (target_len - 1)")),
    "offset-sign": ("relative offset with the wrong sign (query - key vs key - query)",
                    ("query - key", "k_pos - q_pos", "i - j) instead of key - query")),
    # attention and masks
    "scale-by-d": ("scores divided by d instead of sqrt(d)", ("divided by d instead of sqrt(d)",)),
    "not-scaled": ("scores not divided by sqrt(d)", ("not divided by sqrt(d)",)),
    "softmax-over-queries": ("softmax over the queries instead of the keys", ("softmax over the queries",)),
    "mask-after-softmax": ("mask applied after the softmax, or by multiplying (use -inf before it)",
                           ("after the softmax", "instead of -inf")),
    "mask-inverted": ("mask inverted (True must mean 'may attend')", ("inverted mask", "mask inverted")),
    "mask-strict": ("causal mask excludes the query's own position", ("strictly lower triangle",)),
    "queries-at-start": ("queries placed at the first positions (with a cache they are the last)",
                         ("first positions", "aligned to the start")),
    "gap-reduction": ("shift gap reduced wrongly (it is the largest absolute difference)",
                      ("largest signed difference", "the mean absolute difference", "max(shifted scores)")),
    "gap-queries-only": ("only the query positions shifted", ("query positions only",)),
    # ALiBi
    "alibi-sorted": ("ALiBi slopes sorted (the paper's order matters)", ("sorted order",)),
    "alibi-power-of-two": ("ALiBi slopes: the power-of-two formula used for every head count",
                           ("power-of-two",)),
    "alibi-bias-sign": ("positive ALiBi bias: far keys must be penalised", ("positive bias", "wrong sign (+m")),
    "alibi-signed-distance": ("signed distance without the absolute value",
                              ("signed distance (i - j)", "the signed distance (j - i)")),
    "alibi-no-mask": ("no causal mask with ALiBi", ("no causal mask",)),
    # Shaw and T5
    "shaw-no-plus-k": ("relative index without the +K offset", ("without adding K", "without the +K offset")),
    "shaw-no-rel-v": ("attention without rel_v", ("without rel_v",)),
    "t5-halving": ("T5 buckets: num_buckets not halved per side", ("without halving",)),
    "t5-cap": ("T5 buckets: log part not capped", ("capped at num_buckets - 1",)),
    "t5-exact-range": ("T5 buckets: exact range off by one", ("exact range one distance",)),
    "t5-zero-side": ("T5 buckets: offset 0 on the wrong side", ("upper half",)),
    "t5-bidirectional": ("T5 buckets: bidirectional ignored or not passed on", ("bidirectional",)),
    # learned tables
    "resize-nearest": ("table resized by nearest neighbour instead of interpolation", ("nearest-neighbour",)),
    "resize-corners": ("resize coordinates: the end rows must stay at the ends",
                       ("align_corners=False", "the last old row never reaches")),
    # scaling
    "pi-direction": ("position interpolation: frequencies not divided by the factor (multiplied, unscaled, base "
                     "scaled instead)",
                     ("multiplied by the factor", "the factor is not applied")),
    "ntk-exponent": ("NTK base: the exponent is d/(d-2)",
                     ("factor^(d/2)", "without the exponent d/(d-2)", "upside down", "not raised to d/(d-2)")),
    "dynamic-ntk": ("dynamic NTK: the length term (max(seq_len, L), minus factor - 1) or static scaling",
                    ("without max(seq_len", "without subtracting (factor - 1)", "static NTK scaling")),
    "yarn-ramp": ("YaRN ramp: which pairs keep, interpolate or blend", (
        "plain NTK-aware", "position interpolation for every pair", "the ramp reversed", "beta_fast and beta_slow",
        "not rounded outwards", "rounded although truncate=False", "clipped at the last pair",
        "ramp applied to wavelengths")),
    "yarn-attention-factor": ("YaRN attention factor (0.1 ln s + 1 on cos and sin)",
                              ("attention factor", "logits end up multiplied", "sqrt(0.1 ln(factor) + 1)",
                               "base-10 logarithm")),
    "llama3-bands": ("Llama 3.1 scaling: bands, thresholds or smoothing wrong",
                     ("the bands swapped", "smoothing weight reversed", "no smooth band",
                      "thresholds original_max_len * factor")),
    "config-kind-and-size": ("rope config: the kind ('rope_type' or legacy 'type') or the rotary size "
                             "(head_dim, partial_rotary_factor) read wrongly",
                             ("legacy key 'type'", "partial_rotary_factor) features rotate",
                              "although head_dim was passed")),
    "config-lengths": ("rope config: max_position_embeddings confused with original_max_position_embeddings "
                       "(or LongRoPE's long factors used at short lengths)",
                       ("needs original_max_position_embeddings", "long_factor used at a short length")),
    "config-mscale": ("rope config: YaRN's mscale / mscale_all_dim ignored in the attention scaling",
                      ("mscale and mscale_all_dim ignored",)),
}

# Hints that name a mistake without "Your output matches" (phrase in the failure message).
HINTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "inverse-permutation": ("the inverse permutation (half-split to interleaved)", ("inverse permutation",)),
    "offset-direction": ("offset matrix moves positions the wrong way", ("Row p should be PE(p + k)",)),
    "nan-rows": ("NaN rows: a query with no allowed key", ("contain NaN",)),
    "init": ("learned table initialised wrongly (normal, mean 0, std 0.02)",
             ("default initialisation has std 1", "is it uniform", "std 0.02")),
    "last-row": ("valid ids rejected (0 .. max_len - 1, the last row included)", ("the last row included",)),
    "no-gradient": ("no gradient reaches the table", ("no gradient reached",)),
    "heads-last": ("head axis last instead of first", ("put the head axis first",)),
    "not-a-pair": ("returns one value where a pair is expected", ("it must return a pair",)),
    "squeezed": ("result squeezed (one row per sequence expected)", ("(B, n_new)",)),
}

# Mistakes of form: any exercise (regular expressions on the failure message).
GENERIC: dict[str, tuple[str, str]] = {
    "no-value-error": ("bad arguments not rejected with a ValueError naming the argument",
                       r"expected a ValueError|should name the argument|expected an error, but nothing was raised"),
    "wrong-dtype": ("wrong output dtype (it should follow the input, or the contract)", r"returned dtype \S+, expected"),
    "in-place": ("changes its inputs in place", r"\bin place\b"),
    "device": ("helper tensors made on the CPU, not on the input's device", r"\.device\b|\bon meta\b"),
    "python-float": ("returns a tensor where a Python float is expected", r"expected a Python float"),
    "not-parameter": ("weight is not an nn.Parameter", r"expected an nn\.Parameter"),
}

MATCHES = re.compile(r"Your (?:output|value) matches (.+)", re.S)
NOT_ATTEMPTED = re.compile(r"raised NotImplementedError")
HUNG = re.compile(r"did not finish within|time limit for (?:this exercise|the whole submission)[^.]*is used up")
UNPARSED = re.compile(r"(?:SyntaxError|IndentationError|TabError): ")  # a module's: none of its code ran
CRASHED = re.compile(r"the Python process running your code ended|ended its process|tampered with the grading channel")
MORE = re.compile(r"^- \.\.\. and (\d+) more$")
HEADER = re.compile(r"^(\d+) of (\d+) checks(?: that apply)? fail:$")
NOT_DEFINED = re.compile(r"^`\w+` is not defined in your submission")
CELL_NOTE = re.compile(r"^(?:(?P<file>[^:]+): )?(?P<where>cell [^:]+|your module): (?P<detail>.*)", re.S)


def _lookup(text: str, table: dict) -> str | None:
    for key, (_, phrases) in table.items():
        if any(p in text for p in phrases):
            return key
    return None


def _matched_mistakes(message: str) -> list[str]:
    """The X of each 'Your output matches X.' in a failure message (to the end of its line)."""
    found = []
    for line in message.splitlines():
        for part in re.split(r"(?=Your (?:output|value) matches )", line):
            m = MATCHES.match(part)
            if m:
                found.append(m.group(1).strip().removesuffix(".").strip())
    return found


def misconceptions_in(message: str) -> list[tuple[str, str, str]]:
    """(key, label, the text it was read from) for each mistake one failure message names."""
    out = []
    for named in _matched_mistakes(message):
        key = _lookup(named, MISCONCEPTIONS)
        if key:
            out.append((key, MISCONCEPTIONS[key][0], named))
        else:
            text = re.sub(r"\s+", " ", named)
            out.append((f"raw:{text[:200]}", text[:200], named))
    if not out:
        key = _lookup(message, HINTS)
        if key:
            out.append((key, HINTS[key][0], message))
    for key, (label, pattern) in GENERIC.items():
        if re.search(pattern, message):
            out.append((key, label, message))
    return out


def title_and_message(line: str) -> tuple[str, str]:
    """Split '<title>: <message>' at the first ': ' outside brackets (titles may hold '(K = 0: ...)')."""
    depth = 0
    for i, ch in enumerate(line):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ":" and depth == 0 and line[i + 1:i + 2] in (" ", ""):
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ""


@dataclass
class Feedback:
    failures: list[tuple[str, str]] = field(default_factory=list)  # (title, message) as shown
    failed: int = 0          # checks failing (also those not shown)
    ran: int = 0
    hidden: int = 0          # '... and N more'
    not_defined: bool = False
    not_graded: bool = False  # the Gradescope autograder's 'Not graded: ...' (nothing to grade)


def parse_feedback(text: str) -> Feedback:
    fb = Feedback()
    text = text or ""
    if NOT_DEFINED.match(text):
        fb.not_defined = True
    if text.startswith("Not graded:") or text.startswith("Not applicable:"):
        fb.not_graded = True
    current: list | None = None
    for line in text.splitlines():
        header = HEADER.match(line)
        more = MORE.match(line)
        if header:
            fb.failed, fb.ran = int(header.group(1)), int(header.group(2))
            current = None
        elif more:
            fb.hidden = int(more.group(1))
            current = None
        elif line.startswith("- "):
            current = list(title_and_message(line[2:]))
            fb.failures.append(current)
        elif line.startswith(("Reread ", "Not run: ")):
            current = None
        elif current is not None:
            current[1] += "\n" + line
    fb.failures = [tuple(f) for f in fb.failures]
    return fb
