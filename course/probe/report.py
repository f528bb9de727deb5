"""Results of the probes: one ``Result`` per probe, as text, as JSON, and as PNG figures."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

PASS, FAIL, NA = "pass", "fail", "n/a"


@dataclass
class Result:
    probe: str                  # "shift", "cache", "padding", "rope_norm", "alibi", "length", "passkey"
    title: str
    status: str                 # PASS, FAIL or NA
    detail: str                 # the reason, in one line
    values: dict = field(default_factory=dict)  # numbers behind the verdict (JSON-safe)
    plot: object = None         # callable(ax_or_fig) drawing the figure, or None
    figure: str | None = None   # path of the PNG once written


def as_json(target: dict, results: list[Result]) -> str:
    return json.dumps({"target": target,
                       "summary": {s: sum(r.status == s for r in results) for s in (PASS, FAIL, NA)},
                       "probes": [{"probe": r.probe, "title": r.title, "status": r.status, "detail": r.detail,
                                   "values": r.values, "figure": r.figure} for r in results]}, indent=2)


def as_text(target: dict, results: list[Result]) -> str:
    lines = [f"probing {target['name']}" + (" (sandboxed)" if target.get("sandboxed") else ""),
             f"  scheme: {target.get('scheme') or 'undeclared'}, trained length: {target['train_len']}"
             + (" (trained)" if target.get("trained") else " (random weights)")]
    lines += [f"  note: {n}" for n in target.get("notes", [])]
    width = max(len(r.title) for r in results)
    for r in results:
        lines.append(f"  {r.status.upper():<4}  {r.title:<{width}}  {r.detail}")
        if r.figure:
            lines.append(f"        {'':<{width}}  figure: {r.figure}")
    counts = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, NA)}
    lines.append(f"  {counts[PASS]} passed, {counts[FAIL]} failed, {counts[NA]} not applicable")
    return "\n".join(lines)


def write_figures(results: list[Result], directory, stem: str) -> None:
    """One PNG per probe that has something to show: DIR/<stem>_<probe>.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.plot is None:
            continue
        fig = plt.figure(figsize=(8, 3.6))
        try:
            r.plot(fig)
            fig.suptitle(f"{stem}: {r.title} ({r.status})", fontsize=10)
            fig.tight_layout()
            path = directory / f"{stem}_{r.probe}.png"
            fig.savefig(path, dpi=90)
            r.figure = str(path)
        finally:
            plt.close(fig)
