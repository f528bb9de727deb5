"""Probes 6-7: behaviour past the trained length, and passkey retrieval.

On random weights only numerics can be judged (are the logits finite, how much does their
size drift past the nominal length?). Trained models (the lab's cached ones) are judged on
their task: loss or accuracy per position at 1x, 2x and 4x the training length, and
retrieval of a passkey hidden at several depths.
"""
from __future__ import annotations

import torch

from course.probe.report import FAIL, NA, PASS, Result

MULTIPLES = (1, 2, 4)
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
LOSS_RATIO = 1.25      # trained chars model: bits/char at 4x may be at most 1.25 x those at 1x
ACC_RATIO = 0.8        # trained recall model: accuracy at 4x at least 0.8 x that at 1x
PASSKEY_MIN = 0.5      # passkey: at least half the needles found at every depth and length
MAX_TOKENS = 8192      # longest sequence sent to a model of random weights: its train_len is its own word


def length(handle) -> Result:
    title = "past the trained length (1x-4x)"
    if handle.trained and handle.task in ("recall", "chars"):
        return _trained_length(handle, title)
    L, g = handle.train_len, torch.Generator().manual_seed(6)
    if MULTIPLES[-1] * L > MAX_TOKENS:
        return Result("length", title, NA, f"train_len {L}: {MULTIPLES[-1]}x that is more than the {MAX_TOKENS} "
                      "tokens the probe sends a model")
    curves, errors = {}, {}
    for m in MULTIPLES:
        ids = torch.randint(1, handle.vocab, (2, m * L), generator=g)
        try:
            logits = handle.logits(ids)
        except Exception as err:  # noqa: BLE001 - e.g. a learned table of L rows
            errors[m] = f"{type(err).__name__}: {str(err)[:120]}"
            continue
        if not torch.isfinite(logits).all():
            bad = int((~torch.isfinite(logits)).any(-1).any(0).nonzero()[0])
            return Result("length", title, FAIL, f"non-finite logits at {m}x from position {bad}")
        curves[m] = logits.double().pow(2).mean(-1).sqrt().mean(0)   # RMS logit per position
    if not curves:
        return Result("length", title, FAIL, f"the model does not run even at its nominal length {L}: {errors[1]}")
    base = float(curves[min(curves)][:L].mean())
    drift = {m: float((c[L:] / base - 1).abs().max()) if len(c) > L else 0.0 for m, c in curves.items()}
    values = {"train_len": L, "rms_drift_past_L": drift, "errors": errors, "judged": "numerics (random weights)"}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        for m, c in curves.items():
            ax.plot(c.numpy(), label=f"{m}x ({m * L} tokens)", lw=1)
        ax.axvline(L, color="k", ls=":", label="trained length")
        ax.set_xlabel("position"), ax.set_ylabel("RMS logit"), ax.legend(fontsize=8)

    if errors:
        return Result("length", title, NA, f"runs only up to its position table ({L}): "
                      + "; ".join(f"{m}x raised {e}" for m, e in errors.items()), values, plot)
    text = ", ".join(f"{m}x: {d:.0%}" for m, d in drift.items() if m > 1)
    return Result("length", title, PASS, f"random weights, so numerics only: logits finite up to 4x; RMS logit "
                  f"drift past L={L}: {text}", values, plot)


def _trained_length(handle, title) -> Result:
    from course.lab import evaluation
    from course.lab.training import corpus

    L, model = handle.train_len, handle.model
    per = {}
    for m in MULTIPLES:
        if handle.task == "chars":
            per[m] = evaluation.eval_chars(model, corpus()[1], m * L, tokens_budget=8192)
        else:
            per[m] = evaluation.eval_recall(model, m * L, tokens_budget=8192)
    key = "bits_per_char" if handle.task == "chars" else "accuracy"
    score = {m: per[m][key] for m in MULTIPLES}
    values = {"train_len": L, key: score, "by_position": {m: per[m]["by_position"] for m in MULTIPLES}}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        width = evaluation.CHAR_BIN if handle.task == "chars" else evaluation.RECALL_BIN
        for m in MULTIPLES:
            ys = per[m]["by_position"]
            ax.plot([width * (k + 0.5) for k in range(len(ys))], ys, "o-", ms=3, label=f"{m}x")
        ax.axvline(L, color="k", ls=":")
        ax.set_xlabel("position"), ax.set_ylabel(key.replace("_", " ")), ax.legend(fontsize=8)

    text = ", ".join(f"{m}x: {s:.3f}" for m, s in score.items())
    ok = score[4] <= LOSS_RATIO * score[1] if handle.task == "chars" else score[4] >= ACC_RATIO * score[1]
    rule = f"4x within {LOSS_RATIO}x of 1x" if handle.task == "chars" else f"4x at least {ACC_RATIO} of 1x"
    return Result("length", title, PASS if ok else FAIL, f"{key} {text} (pass: {rule})", values, plot)


def passkey(handle) -> Result:
    title = "passkey retrieval by depth"
    if not handle.trained:
        return Result("passkey", title, NA, "random weights: retrieval needs a trained model "
                      "(python -m course.probe --lab recall:rope)")
    if handle.task != "recall":
        return Result("passkey", title, NA, f"trained on {handle.task!r}, not on the lab's recall task")
    from course.lab import evaluation

    L = handle.train_len
    found = {m: evaluation.eval_passkey(handle.model, m * L, DEPTHS, trials=20) for m in MULTIPLES}
    values = {"depths": list(DEPTHS), "found": {m: f for m, f in found.items()}, "min": PASSKEY_MIN}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow([found[m] for m in MULTIPLES], vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(MULTIPLES)), [f"{m}x" for m in MULTIPLES])
        ax.set_xticks(range(len(DEPTHS)), [f"{d:.0%}" for d in DEPTHS])
        ax.set_xlabel("needle depth"), ax.set_ylabel("length")
        fig.colorbar(im, ax=ax, label="needles found")

    misses = [(m, d, f) for m in MULTIPLES for d, f in zip(DEPTHS, found[m]) if f < PASSKEY_MIN]
    text = "; ".join(f"{m}x: " + " ".join(f"{f:.0%}" for f in found[m]) for m in MULTIPLES)
    if not misses:
        return Result("passkey", title, PASS, f"found at every depth up to 4x ({text})", values, plot)
    m, d, f = misses[0]
    return Result("passkey", title, FAIL, f"first miss at {m}x, depth {d:.0%}: {f:.0%} found ({text})", values, plot)


PROBES = {"length": length, "passkey": passkey}
