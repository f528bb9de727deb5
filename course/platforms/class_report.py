"""What to re-teach: ``python -m course.report OUT_DIR [--html report.html] [--json report.json]``.

Reads a graded class, either a batch's ``OUT_DIR/students/*.json`` (course.batch; also what its
nbgrader path writes) or a folder of Gradescope ``results.json`` files (``gradescope/<id>/results.json``
or any ``**/results.json``), and writes one self-contained page (figures as PNG data URIs, no
script, no network: a Content-Security-Policy forbids both) and the same data as JSON:

- the score distribution of each exercise (a strip plot: one dot per learner);
- the checks failed most often, by exercise: the ``- <title>: <message>`` lines of the feedback,
  counted once per learner (failures hidden behind ``... and N more`` are not seen; checks that
  only met a ``NotImplementedError`` stub count as not attempted, not as failed);
- each named misconception, how many learners have it, in which exercise, and the notebook section
  to reread (course.exercises.where_to_look). A failure line is read in three steps: the grader's
  ``Your output matches X.`` / ``Your value matches X.`` sentences, X looked up in MISCONCEPTIONS (a
  table keyed by a stable phrase of X, so that the several wordings of one mistake count as one);
  an X no phrase knows is kept as it is (key ``raw:X``). Then hints that name a mistake without
  "matches" (HINTS) and mistakes of form rather than idea (GENERIC: dtype, in place, argument
  checks, device);
- learners whose submission could not be graded, hung, crashed or raised (the report's ``error``
  and ``notes``, feedback lines that ran out of time), or defined nothing of the course;
- time per learner: a batch's ``seconds``, Gradescope's ``execution_time``; ``n/a`` when absent.

Every learner-provided text (names, feedback, notes) is HTML-escaped.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from course.exercises import EXERCISES, where_to_look
from course.files import write_atomic

REPORT_VERSION = 1
HTML_NAME, JSON_NAME = "report.html", "report.json"

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
                          ("positions restarting at 0", "ids restarting at 0")),
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


# -- reading a class ----------------------------------------------------------------------------

@dataclass
class Learner:
    id: str
    score: float
    max_score: float
    exercises: list[dict]          # {"id", "score", "max_score", "feedback"}
    seconds: float | None = None
    status: str = "graded"
    error: str = ""
    notes: list[str] = field(default_factory=list)
    source: str = ""               # the file it was read from


def read_batch(folder: Path) -> list[Learner]:
    learners = []
    for path in sorted((folder / "students").glob("*.json")):
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            learners.append(Learner(path.stem, 0.0, 0.0, [], None, "error", f"unreadable result file {path.name}",
                                    source=str(path)))
            continue
        if not isinstance(r, dict):
            continue
        exercises = [e for e in r.get("exercises", []) if isinstance(e, dict) and e.get("id") in EXERCISES]
        seconds = r.get("seconds")
        learners.append(Learner(str(r.get("student", path.stem)), float(r.get("score") or 0.0),
                                float(r.get("max_score") or 0.0), exercises,
                                float(seconds) if isinstance(seconds, (int, float)) else None,
                                str(r.get("status", "graded")), str(r.get("error") or ""),
                                [str(n) for n in r.get("notes", [])], str(path)))
    return learners


GS_ERRORS = (re.compile(r"^Could not grade this submission: (.*)"),
             re.compile(r"^The autograder could not grade this submission: (.*)"),
             re.compile(r"^(The autograder failed while grading .*)"),
             re.compile(r"^(No notebook \(\.ipynb\) or Python module \(\.py\) was found.*)"))
GS_STOPPED = re.compile(r"^(Grading stopped after .*)")


def read_gradescope(folder: Path) -> list[Learner]:
    paths = sorted(folder.glob("gradescope/*/results.json")) or sorted(folder.rglob("results.json"))
    learners = []
    for path in paths:
        relative = path.parent.relative_to(folder).as_posix()
        if relative.startswith("gradescope/"):
            relative = relative[len("gradescope/"):]
        learner_id = relative if relative not in ("", ".") else folder.name
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            learners.append(Learner(learner_id, 0.0, 0.0, [], None, "error", "unreadable results.json",
                                    source=str(path)))
            continue
        if not isinstance(doc, dict):
            continue
        exercises = []
        for test in doc.get("tests", []):
            name = str(test.get("name", ""))
            exercise_id = name.split(" ", 1)[0]
            if exercise_id not in EXERCISES or "max_score" not in test:
                continue  # the visible checks and other tests that are not an exercise
            exercises.append({"id": exercise_id, "score": float(test.get("score") or 0.0),
                              "max_score": float(test["max_score"]), "feedback": str(test.get("output", ""))})
        error, notes = "", []
        for line in str(doc.get("output", "")).splitlines():
            for pattern in GS_ERRORS:
                m = pattern.match(line)
                if m and not error:
                    error = m.group(1)
            if line.startswith("note: "):
                notes.append(line[len("note: "):])
            m = GS_STOPPED.match(line)
            if m:
                notes.append(m.group(1))
        # exercises the autograder lists but never graded (nothing submitted for them) are left out
        graded = [e for e in exercises if not parse_feedback(e["feedback"]).not_graded]
        seconds = doc.get("execution_time")
        learners.append(Learner(learner_id, float(doc.get("score") or 0.0),
                                float(sum(e["max_score"] for e in graded)), graded,
                                float(seconds) if isinstance(seconds, (int, float)) else None,
                                "error" if error else "graded", error, notes, str(path)))
    return learners


def read_class(folder) -> tuple[list[Learner], str]:
    """(learners, source): 'batch' when the folder has students/*.json, else 'gradescope'."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if any((folder / "students").glob("*.json")):
        return read_batch(folder), "batch"
    learners = read_gradescope(folder)
    if not learners:
        raise ValueError(f"{folder} holds neither students/*.json (python -m course.batch) nor results.json files "
                         "(Gradescope)")
    return learners, "gradescope"


# -- the analysis -------------------------------------------------------------------------------

def _problems(learner: Learner) -> list[dict]:
    found = []

    def add(kind, where, detail):
        found.append({"student": learner.id, "kind": kind, "where": where, "detail": detail[:400]})

    if learner.error:
        add("hung" if HUNG.search(learner.error) else "error", "submission", learner.error)
    for note in learner.notes:  # cells that raised or hung; other notes (routing, adapters) are information
        cell = CELL_NOTE.match(note)
        if "your code could not be run" in note or ": cannot be graded: " in note:
            add("error", "submission", note)
        elif note.startswith("Grading stopped after"):
            add("hung", "submission", note)
        elif cell:
            where = f"{cell['file']}: {cell['where']}" if cell["file"] else cell["where"]
            detail = cell["detail"]
            add("hung" if HUNG.search(detail) else "crashed" if CRASHED.search(detail) else "raised", where, detail)
    for exercise in learner.exercises:
        fb = parse_feedback(exercise["feedback"])
        for kind, pattern in (("hung", HUNG), ("crashed", CRASHED)):
            hit = next((m for _, m in fb.failures if pattern.search(m)), None)
            if hit is not None:
                add(kind, exercise["id"], hit.splitlines()[0])
    if not learner.error and not learner.exercises:
        add("empty", "submission", "defines none of the course's functions: nothing was graded")
    return found


def analyse(learners: list[Learner], source: str, folder: str = "") -> dict:
    learners = sorted(learners, key=lambda l: l.id)
    exercise_ids = [i for i in EXERCISES if any(e["id"] == i for l in learners for e in l.exercises)]
    per_exercise = {i: {"id": i, "where": where_to_look(i), "max_score": float(EXERCISES[i].points),
                        "scores": [], "missing": 0, "not_attempted": 0, "failed_checks": 0} for i in exercise_ids}
    checks: dict[tuple[str, str], set] = {}
    mistakes: dict[tuple[str, str], dict] = {}
    for learner in learners:
        for exercise in learner.exercises:
            row = per_exercise[exercise["id"]]
            fb = parse_feedback(exercise["feedback"])
            attempted = [(t, m) for t, m in fb.failures if not NOT_ATTEMPTED.search(m)]
            stub = bool(fb.failures) and not attempted
            row["scores"].append({"student": learner.id, "score": exercise["score"],
                                  "max_score": exercise["max_score"], "missing": fb.not_defined, "stub": stub})
            row["missing"] += fb.not_defined
            if stub:
                row["not_attempted"] += 1
                continue
            row["failed_checks"] += fb.failed
            for title, message in attempted:
                checks.setdefault((exercise["id"], title), set()).add(learner.id)
                for key, label, text in misconceptions_in(message):
                    entry = mistakes.setdefault((key, exercise["id"]), {
                        "key": key, "label": label, "exercise": exercise["id"],
                        "where": where_to_look(exercise["id"]), "students": set(), "example": text.strip()[:300]})
                    entry["students"].add(learner.id)
    exercises = []
    for row in per_exercise.values():
        fractions = [s["score"] / s["max_score"] for s in row["scores"] if s["max_score"]]
        row.update(learners=len(row["scores"]), mean=round(statistics.fmean(fractions), 4) if fractions else None,
                   full_marks=sum(f >= 1 for f in fractions), zero=sum(f == 0 for f in fractions))
        exercises.append(row)
    check_rows = sorted(({"exercise": e, "title": t, "learners": len(s), "students": sorted(s)}
                         for (e, t), s in checks.items()),
                        key=lambda r: (-r["learners"], list(EXERCISES).index(r["exercise"]), r["title"]))
    mistake_rows = sorted(({**m, "learners": len(m["students"]), "students": sorted(m["students"])}
                           for m in mistakes.values()),
                          key=lambda r: (-r["learners"], list(EXERCISES).index(r["exercise"]), r["key"]))
    problems = [p for learner in learners for p in _problems(learner)]
    times = [{"student": l.id, "seconds": l.seconds} for l in learners]
    known = [t["seconds"] for t in times if t["seconds"] is not None]
    totals = [l.score / l.max_score for l in learners if l.max_score]
    return {
        "version": REPORT_VERSION, "source": source, "folder": folder,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": {"learners": len(learners), "graded": sum(l.status == "graded" and bool(l.exercises) for l in learners),
                    "with_problems": len({p["student"] for p in problems}),
                    "mean_fraction": round(statistics.fmean(totals), 4) if totals else None,
                    "median_seconds": round(statistics.median(known), 2) if known else None,
                    "max_seconds": round(max(known), 2) if known else None},
        "learners": [{"student": l.id, "score": l.score, "max_score": l.max_score, "status": l.status,
                      "seconds": l.seconds, "exercises": {e["id"]: e["score"] for e in l.exercises}}
                     for l in learners],
        "exercises": exercises, "checks": check_rows, "misconceptions": mistake_rows,
        "problems": problems, "times": times,
    }


# -- figures ----------------------------------------------------------------------------------

def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def scores_figure(report: dict) -> str:
    """Strip plot: one row per exercise, one dot per learner at score / max (x), mean as a bar."""
    from matplotlib.figure import Figure

    rows = report["exercises"]
    if not rows:
        return ""
    fig = Figure(figsize=(5.6, 0.9 + min(0.3, 5.0 / len(rows)) * len(rows)))  # 31 exercises still fit a screen
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        for k, s in enumerate(row["scores"]):
            f = s["score"] / s["max_score"] if s["max_score"] else 0.0
            jitter = ((k * 0.6180339887) % 1.0 - 0.5) * 0.5
            color = "#2e7d32" if f >= 1 else "#c62828" if f == 0 else "#ef6c00"
            ax.plot(f, y + jitter, "x" if s["missing"] or s["stub"] else "o", ms=4.5, color=color, alpha=0.75)
        if row["mean"] is not None:
            ax.plot([row["mean"]] * 2, [y - 0.38, y + 0.38], color="#1a237e", lw=2)
    ax.set_yticks(range(len(rows)), [f"{r['id']} ({r['learners']})" for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0", "", "half", "", "full"], fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("score per exercise (learners graded on it)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def times_figure(report: dict) -> str:
    from matplotlib.figure import Figure

    known = [t["seconds"] for t in report["times"] if t["seconds"] is not None]
    if not known:
        return ""
    fig = Figure(figsize=(5.6, 1.5))
    ax = fig.add_subplot()
    ax.hist(known, bins=min(20, max(5, len(known))), color="#546e7a")
    ax.set_xlabel("seconds to grade a learner", fontsize=8)
    ax.set_ylabel("learners", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


# -- the page ---------------------------------------------------------------------------------

def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _more(rows: list, shown: int) -> str:
    return f"<div class=names>... and {len(rows) - shown} more below</div>" if len(rows) > shown else ""


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _names(students: list[str], limit: int = 6) -> str:
    shown = ", ".join(students[:limit])
    return _e(shown + (f" and {len(students) - limit} more" if len(students) > limit else ""))


CSS = """
body{font:13px/1.35 system-ui,sans-serif;margin:10px 16px;color:#212121}
h1{font-size:18px;margin:0 0 2px} h2{font-size:14px;margin:10px 0 4px}
.sub{color:#555;margin-bottom:6px}
.grid{display:grid;grid-template-columns:minmax(0,560px) minmax(0,1fr);gap:14px;align-items:start}
table{border-collapse:collapse;width:100%} td,th{padding:2px 6px;border-bottom:1px solid #e0e0e0;
text-align:left;vertical-align:top} th{background:#f5f5f5;font-weight:600}
td.n{text-align:right;font-weight:600;white-space:nowrap} .where{color:#555;font-size:12px}
.names{color:#666;font-size:12px} .grid .names,.grid .one{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.grid table{table-layout:fixed} .bad{color:#c62828} img{max-width:100%}
.of{color:#888;font-weight:400;font-size:11px}
.pill{display:inline-block;padding:0 6px;border-radius:8px;background:#eceff1;margin-right:6px}
details{margin-top:8px} summary{cursor:pointer;font-weight:600}
"""


def render_html(report: dict, top: int = 6) -> str:
    s = report["summary"]
    mean = _percent(s["mean_fraction"])
    head = (f"<span class=pill>{s['learners']} learners</span><span class=pill>{s['graded']} graded</span>"
            f"<span class=pill>mean score {mean}</span><span class=pill>{s['with_problems']} with problems</span>"
            f"<span class=pill>time median {_seconds(s['median_seconds'])}, max {_seconds(s['max_seconds'])}</span>")
    graded_on = {r["id"]: r["learners"] for r in report["exercises"]}
    mistakes = "".join(
        f"<tr><td class=n>{m['learners']}<span class=of>/{graded_on.get(m['exercise'], 0)}</span></td>"
        f"<td>{_e(m['label'])}<div class=names>{_names(m['students'], 12)}</div></td>"
        f"<td><div class=one>{_e(m['exercise'])}</div><div class=where>{_e(m['where'])}</div></td></tr>"
        for m in report["misconceptions"][:top]) or "<tr><td colspan=3>No named misconception.</td></tr>"
    checks = "".join(
        f"<tr><td class=n>{c['learners']}<span class=of>/{graded_on.get(c['exercise'], 0)}</span></td><td>{_e(c['title'])}</td>"
        f"<td class=one>{_e(c['exercise'])}</td></tr>"
        for c in report["checks"][:top]) or "<tr><td colspan=3>No failed check.</td></tr>"
    problems = "".join(
        f"<tr><td class=one>{_e(p['student'])}</td><td class=bad>{_e(p['kind'])}</td><td class=one>{_e(p['where'])}</td>"
        f"<td class=one title=\"{_e(p['detail'])}\">{_e(p['detail'][:200])}</td></tr>" for p in report["problems"][:top]) \
        or "<tr><td colspan=4>Every submission ran.</td></tr>"
    scores_img = scores_figure(report)
    times_img = times_figure(report)
    figure = (f'<img alt="score per exercise" src="{scores_img}"><div class=names>A dot per learner (x: not defined, '
              'or only a NotImplementedError stub); bar: the mean.</div>' if scores_img else "<p>No exercise was graded.</p>")
    times = (f'<img alt="grading time per learner" src="{times_img}">' if times_img
             else "<p>Time per learner: n/a (this source records none).</p>")
    learner_rows = "".join(
        f"<tr><td>{_e(l['student'])}</td><td class=n>{l['score']:g} / {l['max_score']:g}</td><td>{_e(l['status'])}</td>"
        f"<td class=n>{_seconds(l['seconds'])}</td></tr>" for l in report["learners"])
    all_checks = "".join(
        f"<tr><td class=n>{c['learners']}</td><td>{_e(c['title'])}</td><td>{_e(c['exercise'])}</td>"
        f"<td class=names>{_names(c['students'], 20)}</td></tr>" for c in report["checks"])
    all_mistakes = "".join(
        f"<tr><td class=n>{m['learners']}</td><td>{_e(m['label'])}</td><td>{_e(m['exercise'])}</td>"
        f"<td class=where>{_e(m['where'])}</td><td class=names>{_names(m['students'], 50)}</td></tr>"
        for m in report["misconceptions"])
    all_problems = "".join(
        f"<tr><td>{_e(p['student'])}</td><td>{_e(p['kind'])}</td><td>{_e(p['where'])}</td><td>{_e(p['detail'])}</td></tr>"
        for p in report["problems"])
    exercise_rows = "".join(
        f"<tr><td>{_e(r['id'])}</td><td class=n>{r['learners']}</td>"
        f"<td class=n>{_percent(r['mean'])}</td>"
        f"<td class=n>{r['full_marks']}</td><td class=n>{r['zero']}</td><td class=n>{r['missing']}</td>"
        f"<td class=n>{r['not_attempted']}</td><td class=where>{_e(r['where'])}</td></tr>" for r in report["exercises"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Class report: what to re-teach</title><style>{CSS}</style></head><body>
<h1>What to re-teach</h1>
<div class=sub>{_e(report['source'])} results in {_e(report['folder'])}, read {_e(report['generated_at'])}</div>
<div>{head}</div>
<div class=grid><div>{figure}{times}</div><div>
<h2>Misconceptions (learners who have each / learners graded on the exercise)</h2>
<table><colgroup><col style="width:58px"><col><col style="width:36%"></colgroup>
<tr><th>#</th><th>misconception</th><th>exercise, where to reread</th></tr>{mistakes}</table>
{_more(report['misconceptions'], top)}
<h2>Checks failed most often</h2>
<table><colgroup><col style="width:58px"><col><col style="width:36%"></colgroup>
<tr><th>#</th><th>check</th><th>exercise</th></tr>{checks}</table>{_more(report['checks'], top)}
<h2>Submissions that errored, hung, crashed or raised</h2>
<table><colgroup><col style="width:14%"><col style="width:64px"><col style="width:20%"><col></colgroup>
<tr><th>learner</th><th>what</th><th>where</th><th>detail</th></tr>{problems}</table>
{_more(report['problems'], top)}
</div></div>
<details><summary>Exercises</summary><table><tr><th>exercise</th><th>learners</th><th>mean</th><th>full marks</th>
<th>zero</th><th>not defined</th><th>not attempted</th><th>where to reread</th></tr>{exercise_rows}</table></details>
<details><summary>Every misconception</summary><table><tr><th>#</th><th>misconception</th><th>exercise</th>
<th>where</th><th>learners</th></tr>{all_mistakes}</table></details>
<details><summary>Every failed check</summary><table><tr><th>#</th><th>check</th><th>exercise</th><th>learners</th></tr>
{all_checks}</table></details>
<details><summary>Every problem</summary><table><tr><th>learner</th><th>what</th><th>where</th><th>detail</th></tr>
{all_problems}</table></details>
<details><summary>Learners: score and time</summary><table><tr><th>learner</th><th>score</th><th>status</th>
<th>time</th></tr>{learner_rows}</table></details>
</body></html>
"""


def write_class_report(folder, html_path=None, json_path=None, exclude=()) -> tuple[Path, Path]:
    """Read the class in `folder`, write the page and the JSON (default: report.html and report.json
    in `folder`); learners in `exclude` are left out (a batch's stale results)."""
    folder = Path(folder)
    learners, source = read_class(folder)
    learners = [l for l in learners if l.id not in set(exclude)]
    report = analyse(learners, source, str(folder.resolve()))
    html_path = Path(html_path) if html_path else folder / HTML_NAME
    json_path = Path(json_path) if json_path else folder / JSON_NAME
    write_atomic(json_path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    write_atomic(html_path, render_html(report))
    return html_path, json_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a batch's OUT_DIR (students/*.json) or a folder of Gradescope results.json files")
    parser.add_argument("--html", help=f"the page to write (default FOLDER/{HTML_NAME})")
    parser.add_argument("--json", help=f"the data to write (default FOLDER/{JSON_NAME})")
    args = parser.parse_args(argv)
    try:
        html_path, json_path = write_class_report(args.folder, args.html, args.json)
    except ValueError as err:
        parser.error(str(err))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    s = report["summary"]
    print(f"{s['learners']} learners ({report['source']}): {len(report['misconceptions'])} misconceptions, "
          f"{len(report['checks'])} failed checks, {s['with_problems']} learners with problems")
    for m in report["misconceptions"][:5]:
        print(f"  {m['learners']:3d}  {m['label']}  [{m['exercise']}: {m['where']}]")
    print(f"wrote {html_path} and {json_path}")
    return 0
