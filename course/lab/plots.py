"""Figures and tables of the lab, drawn from the cached results (see ``cache.load_results``)."""
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


def train_len(results: dict, task: str) -> int:
    record = next(r for (t, _), r in results["runs"].items() if t == task)
    return record["train"]["train_len"]


def _lengths(results, task, variant):
    return sorted(int(n) for n in results[task][variant])


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
    """The task's metric against evaluation length (1x .. 8x), one panel per group of variants."""
    key = key or METRIC[task][0]
    L = train_len(results, task)
    fig, axes = _panels(groups)
    for ax, group in zip(axes, groups):
        for v in group:
            if v not in results[task]:
                continue
            lengths = _lengths(results, task, v)
            ax.plot([n // L for n in lengths], [results[task][v][str(n)][key] for n in lengths],
                    marker="o", ls=STYLE.get(v, "-"), color=COLORS[v], label=LABELS[v])
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], ["1x", "2x", "4x", "8x"])
        ax.set_xlabel(f"evaluation length (training length L = {L})")
        ax.grid(alpha=0.3)
    fig.legend(*_merged_handles(axes), loc="outside right center", fontsize=8)
    axes[0].set_ylabel(key.replace("_", " "))
    fig.suptitle(f"{task}: {METRIC[task][1]} over the whole sequence")
    return fig


def plot_by_position(results: dict, task: str, length: int | None = None, groups=(TRAINED, ROPE_FAMILY),
                     field: str = "by_position"):
    """Metric per position bin (or per distance bin with field="by_distance") at one length."""
    L = train_len(results, task)
    length = length or 8 * L
    width = RECALL_BIN if task == "recall" else CHAR_BIN
    fig, axes = _panels(groups)
    for ax, group in zip(axes, groups):
        for v in group:
            if v not in results[task] or str(length) not in results[task][v]:
                continue
            values = results[task][v][str(length)][field]
            xs = [(i + 0.5) * width for i, y in enumerate(values) if y is not None]
            ys = [y for y in values if y is not None]
            ax.plot(xs, ys, color=COLORS[v], label=LABELS[v], lw=1.5, ls=STYLE.get(v, "-"))
        ax.axvline(L, color="black", ls="--", lw=1)
        ax.text(L, 0.02, " L", transform=ax.get_xaxis_transform(), va="bottom")
        ax.set_xlabel(("distance back to the first copy" if field == "by_distance" else "position") + " (tokens)")
        ax.grid(alpha=0.3)
    fig.legend(*_merged_handles(axes), loc="outside right center", fontsize=8)
    axes[0].set_ylabel(METRIC[task][0].replace("_", " "))
    what = "distance" if field == "by_distance" else "position"
    fig.suptitle(f"{task}: {METRIC[task][1]} by {what}, sequences of {length} = {length // L}L tokens")
    return fig


def plot_passkey(results: dict, variants=TRAINED + ROPE_FAMILY[1:], cols: int = 4):
    """One heat map per variant: needles retrieved, by depth (rows) and length (columns)."""
    task = "recall"
    L = train_len(results, task)
    variants = [v for v in variants if v in results[task]]
    rows = -(-len(variants) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols + 1, 2.5 * rows), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax, v in zip(axes.flat, variants):
        lengths = _lengths(results, task, v)
        grid = [[results[task][v][str(n)]["passkey"][d] for n in lengths] for d in range(len(DEPTHS))]
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for d, row in enumerate(grid):
            for j, value in enumerate(row):
                ax.text(j, d, f"{100 * value:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(lengths)), [f"{n // L}x" for n in lengths])
        ax.set_yticks(range(len(DEPTHS)), [f"{d:.0%}" for d in DEPTHS])
        ax.set_title(LABELS[v], fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("needle depth")
    fig.colorbar(image, ax=axes, shrink=0.5, label="needles retrieved (%, 1 = 100%)")
    fig.suptitle("Passkey probe: % of needles retrieved, by depth and evaluation length")
    return fig


def plot_training(results: dict):
    """Training loss of every run, one panel per task."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained")
    for ax, task in zip(axes, ("recall", "chars")):
        for (t, scheme), record in sorted(results["runs"].items()):
            if t != task:
                continue
            steps, losses = zip(*record["info"]["loss_curve"])
            ax.plot(steps, losses, color=COLORS[scheme], label=f"{LABELS[scheme]} ({record['info']['train_seconds']:.0f} s)")
        ax.set_title(f"{task}: training loss (nats, running mean)")
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def summary_rows(results: dict, task: str, key: str | None = None, variants=TRAINED + ROPE_FAMILY[1:]):
    """[(label, [metric at 1x, 2x, 4x, 8x])] for the variants present."""
    key = key or METRIC[task][0]
    rows = []
    for v in variants:
        if v in results[task]:
            rows.append((LABELS[v], [results[task][v][str(n)][key] for n in _lengths(results, task, v)]))
    return rows


def print_summary(results: dict, task: str, key: str | None = None):
    """A rich table of the task's metric at every multiple of the training length."""
    from rich.console import Console
    from rich.table import Table

    key = key or METRIC[task][0]
    L = train_len(results, task)
    rows = summary_rows(results, task, key)
    table = Table(title=f"{task}: {key.replace('_', ' ')}")
    table.add_column("scheme")
    for n in _lengths(results, task, "rope"):
        table.add_column(f"{n // L}x ({n})", justify="right")
    for label, values in rows:
        table.add_row(label, *(f"{v:.3f}" for v in values))
    Console().print(table)
