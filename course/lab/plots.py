"""Figures and tables of the lab, drawn from the cached results (see ``cache.load_results``).

Every run exists once per training seed. A number is shown as the mean over the seeds with
its range (min-max over the seeds) in brackets; figures draw the mean with a band from the
lowest to the highest seed. With three seeds the range is the honest summary: a standard
deviation of three values would pretend to more than they say.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from course.lab.evaluation import CHAR_BIN, DEPTHS, RECALL_BIN
from course.lab.model import SCHEMES

TRAINED = SCHEMES
ROPE_FAMILY = ("rope", "rope+pi", "rope+ntk", "rope+yarn", "rope+llama3", "rope+ft", "rope+pi+ft")
LABELS = {"none": "NoPE", "sinusoidal": "sinusoidal", "learned": "learned", "t5": "T5 bias", "rope": "RoPE",
          "alibi": "ALiBi", "rope+pi": "RoPE + PI", "rope+ntk": "RoPE + NTK", "rope+yarn": "RoPE + YaRN",
          "rope+llama3": "RoPE + Llama 3.1",
          "rope+ft": "RoPE, fine-tuned at 4L", "rope+pi+ft": "RoPE + PI, fine-tuned at 4L"}
COLORS = {"none": "tab:gray", "sinusoidal": "tab:orange", "learned": "tab:brown", "t5": "tab:purple",
          "rope": "tab:blue", "alibi": "tab:green", "rope+pi": "tab:cyan", "rope+ntk": "tab:red",
          "rope+yarn": "tab:olive", "rope+llama3": "tab:pink", "rope+ft": "tab:blue", "rope+pi+ft": "tab:cyan"}
STYLE = {"rope+ft": "--", "rope+pi+ft": "--"}
METRIC = {"recall": ("accuracy", "recall accuracy"), "chars": ("bits_per_char", "held-out bits per character")}
SLIDING = "sliding"  # key of the sliding-window bits per character (chars only)


def train_len(results: dict, task: str) -> int:
    record = next(r for (t, _, _), r in results["runs"].items() if t == task)
    return record["train"]["train_len"]


def _lengths(results, task, variant):
    return sorted(int(n) for n in next(iter(results[task][variant].values())))


def metric(entry: dict, key: str):
    """One number (or list) of an evaluation entry; SLIDING is the sliding window's bits per character."""
    return entry[SLIDING]["bits_per_char"] if key == SLIDING else entry[key]


def per_seed(results: dict, task: str, variant: str, length: int, key: str | None = None) -> list:
    """The metric of every seed (in seed order) at one length."""
    key = key or METRIC[task][0]
    return [metric(by_length[str(length)], key) for _, by_length in sorted(results[task][variant].items())]


def interval(values) -> tuple[float, float, float]:
    """(mean, min, max) of the seeds' values."""
    return sum(values) / len(values), min(values), max(values)


def spread(results: dict, task: str, variant: str, length: int, key: str | None = None) -> tuple[float, float, float]:
    """(mean, min, max) over the seeds of the metric at one length."""
    return interval(per_seed(results, task, variant, length, key))


def show(values, fmt: str = "{:.2f}") -> str:
    """'mean [min-max]' of the seeds' values, e.g. '2.45 [2.43-2.48]'."""
    mean, low, high = interval(values)
    return f"{fmt.format(mean)} [{fmt.format(low)}-{fmt.format(high)}]"


def _binned_band(results, task, variant, length, field):
    """(bin centres, mean, min, max) of a per-bin list over the seeds, empty bins left out."""
    rows = per_seed(results, task, variant, length, field)
    width = RECALL_BIN if task == "recall" else CHAR_BIN
    keep = [i for i in range(len(rows[0])) if all(r[i] is not None for r in rows)]
    return ([(i + 0.5) * width for i in keep], [interval([r[i] for r in rows]) for i in keep])


def _panels(groups, height=3.6):
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups) + 2.4, height), sharey=True,
                             squeeze=False, layout="constrained")
    return fig, axes[0]


def _merged_handles(axes):
    """Legend entries of all panels, each label once."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen.keys())


def plot_vs_length(results: dict, task: str, groups=(TRAINED, ROPE_FAMILY), key: str | None = None):
    """The task's metric against evaluation length (1x .. 8x), one panel per group of
    variants: the mean over seeds, with a band from the lowest to the highest seed."""
    key = key or METRIC[task][0]
    L = train_len(results, task)
    fig, axes = _panels(groups)
    for ax, group in zip(axes, groups):
        for v in group:
            if v not in results[task]:
                continue
            lengths = _lengths(results, task, v)
            mean, low, high = zip(*(spread(results, task, v, n, key) for n in lengths))
            xs = [n // L for n in lengths]
            ax.plot(xs, mean, marker="o", ls=STYLE.get(v, "-"), color=COLORS[v], label=LABELS[v])
            ax.fill_between(xs, low, high, color=COLORS[v], alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], ["1x", "2x", "4x", "8x"])
        ax.set_xlabel(f"evaluation length (training length L = {L})")
        ax.grid(alpha=0.3)
    fig.legend(*_merged_handles(axes), loc="outside right center", fontsize=8)
    name = "sliding-window bits per char" if key == SLIDING else key.replace("_", " ")
    axes[0].set_ylabel(name)
    how = ("sliding window: every scored character has at least 3/4 of a window before it" if key == SLIDING
           else "non-overlapping windows, every position scored")
    fig.suptitle(f"{task}: {name}, {how} (mean of {len(results['seeds'])} seeds, band: min-max)")
    return fig


def plot_by_position(results: dict, task: str, length: int | None = None, groups=(TRAINED, ROPE_FAMILY),
                     field: str = "by_position"):
    """Metric per position bin (or per distance bin with field="by_distance") at one length:
    mean over seeds, band from the lowest to the highest seed."""
    L = train_len(results, task)
    length = length or 8 * L
    fig, axes = _panels(groups)
    for ax, group in zip(axes, groups):
        for v in group:
            if v not in results[task] or str(length) not in next(iter(results[task][v].values())):
                continue
            xs, bands = _binned_band(results, task, v, length, field)
            mean, low, high = zip(*bands)
            ax.plot(xs, mean, color=COLORS[v], label=LABELS[v], lw=1.5, ls=STYLE.get(v, "-"))
            ax.fill_between(xs, low, high, color=COLORS[v], alpha=0.15, lw=0)
        ax.axvline(L, color="black", ls="--", lw=1)
        ax.text(L, 0.02, " L", transform=ax.get_xaxis_transform(), va="bottom")
        ax.set_xlabel(("distance back to the first copy" if field == "by_distance" else "position") + " (tokens)")
        ax.grid(alpha=0.3)
    fig.legend(*_merged_handles(axes), loc="outside right center", fontsize=8)
    axes[0].set_ylabel(METRIC[task][0].replace("_", " "))
    what = "distance" if field == "by_distance" else "position"
    fig.suptitle(f"{task}: {METRIC[task][1]} by {what}, sequences of {length} = {length // L}L tokens "
                 f"(mean of {len(results['seeds'])} seeds, band: min-max)")
    return fig


def plot_passkey(results: dict, variants=TRAINED + ROPE_FAMILY[1:], cols: int = 4):
    """One heat map per variant: needles retrieved, by depth (rows) and length (columns);
    colour and big number the mean over seeds, small numbers the min-max."""
    task = "recall"
    L = train_len(results, task)
    variants = [v for v in variants if v in results[task]]
    rows = -(-len(variants) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols + 1, 2.7 * rows), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax, v in zip(axes.flat, variants):
        lengths = _lengths(results, task, v)
        cells = [[interval([p[d] for p in per_seed(results, task, v, n, "passkey")]) for n in lengths]
                 for d in range(len(DEPTHS))]
        image = ax.imshow([[c[0] for c in row] for row in cells], vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for d, row in enumerate(cells):
            for j, (mean, low, high) in enumerate(row):
                ax.text(j, d - 0.12, f"{100 * mean:.0f}", ha="center", va="center", fontsize=7)
                ax.text(j, d + 0.25, f"{100 * low:.0f}-{100 * high:.0f}", ha="center", va="center", fontsize=5)
        ax.set_xticks(range(len(lengths)), [f"{n // L}x" for n in lengths])
        ax.set_yticks(range(len(DEPTHS)), [f"{d:.0%}" for d in DEPTHS])
        ax.set_title(LABELS[v], fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("needle depth")
    fig.colorbar(image, ax=axes, shrink=0.5, label="needles retrieved (mean over seeds, 1 = 100%)")
    fig.suptitle(f"Passkey probe: % of needles retrieved, by depth and evaluation length "
                 f"(mean of {len(results['seeds'])} seeds; small: min-max)")
    return fig


def plot_training(results: dict):
    """Training loss of every run, one panel per task, one line per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained")
    for ax, task in zip(axes, ("recall", "chars")):
        for scheme in TRAINED:
            records = [r for (t, s, _), r in sorted(results["runs"].items()) if (t, s) == (task, scheme)]
            seconds = [r["info"]["train_cpu_seconds"] for r in records]
            for i, record in enumerate(records):
                steps, losses = zip(*record["info"]["loss_curve"])
                ax.plot(steps, losses, color=COLORS[scheme], lw=1, alpha=0.8,
                        label=f"{LABELS[scheme]} ({min(seconds):.0f}-{max(seconds):.0f} s)" if i == 0 else None)
        ax.set_title(f"{task}: training loss (nats, running mean), one line per seed")
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def summary_rows(results: dict, task: str, key: str | None = None, variants=TRAINED + ROPE_FAMILY[1:]):
    """[(label, [(mean, min, max) at 1x, 2x, 4x, 8x])] for the variants present."""
    key = key or METRIC[task][0]
    return [(LABELS[v], [spread(results, task, v, n, key) for n in _lengths(results, task, v)])
            for v in variants if v in results[task]]


def print_summary(results: dict, task: str, key: str | None = None):
    """A rich table of the task's metric at every multiple of the training length:
    mean over seeds [min-max]."""
    from rich.console import Console
    from rich.table import Table

    key = key or METRIC[task][0]
    L = train_len(results, task)
    fmt = "{:.0%}" if key == "accuracy" else "{:.2f}"
    name = "sliding-window bits per char" if key == SLIDING else key.replace("_", " ")
    table = Table(title=f"{task}: {name}, mean of {len(results['seeds'])} seeds [min-max]")
    table.add_column("scheme")
    for n in _lengths(results, task, "rope"):
        table.add_column(f"{n // L}x ({n})", justify="right")
    for label, cells in summary_rows(results, task, key):
        table.add_row(label, *(f"{fmt.format(m)} [{fmt.format(lo)}-{fmt.format(hi)}]" for m, lo, hi in cells))
    Console(width=120).print(table)
