"""The report as one self-contained HTML page: figures as PNG data URIs, everything escaped."""
from __future__ import annotations

import base64
import html
import io

# a cross in the strip plot: the learner's own code was not tested
UNGRADED = ("not_defined", "not_attempted", "not_parsed")
MISCONCEPTIONS_SHOWN, OTHERS_SHOWN = 10, 5  # rows of the one-screen view


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
            ax.plot(f, y + jitter, "x" if s["status"] in UNGRADED else "o", ms=4.5, color=color, alpha=0.75)
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
h1{font-size:18px;margin:0 0 2px} h2{font-size:14px;margin:8px 0 3px}
.sub{color:#555;margin-bottom:6px}
.grid{display:grid;grid-template-columns:minmax(0,560px) minmax(0,1fr);gap:14px;align-items:start}
table{border-collapse:collapse;width:100%} td,th{padding:1px 6px;border-bottom:1px solid #e0e0e0;
text-align:left;vertical-align:top} th{background:#f5f5f5;font-weight:600}
td.n{text-align:right;font-weight:600;white-space:nowrap} .where{color:#555;font-size:12px}
.names{color:#666;font-size:12px} .grid .names,.grid .one{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.grid table{table-layout:fixed} .bad{color:#c62828} img{max-width:100%}
.of{color:#888;font-weight:400;font-size:11px}
.pill{display:inline-block;padding:0 6px;border-radius:8px;background:#eceff1;margin-right:6px}
details{margin-top:8px} summary{cursor:pointer;font-weight:600}
"""


def _misconception_row(m: dict, graded_on: dict) -> str:
    """Count (of the learners graded on any of its exercises), label and learners, exercises and where to reread."""
    of = len({s for e in m["exercises"] for s in graded_on.get(e["id"], ())})
    exercises = ", ".join(f"{e['id']} ({e['learners']})" for e in m["exercises"])
    where = "; ".join(m["where"])
    return (f"<tr><td class=n>{m['learners']}<span class=of>/{of}</span></td>"
            f"<td><div class=one title=\"{_e(m['label'])}\">{_e(m['label'])}</div>"
            f"<div class=names>{_names(m['students'], 12)}</div></td>"
            f"<td><div class=one title=\"{_e(exercises)}\">{_e(exercises)}</div>"
            f"<div class=\"where one\" title=\"{_e(where)}\">{_e(where)}</div></td></tr>")


def render_html(report: dict) -> str:
    s = report["summary"]
    mean = _percent(s["mean_fraction"])
    head = (f"<span class=pill>{s['learners']} learners</span><span class=pill>{s['graded']} graded</span>"
            f"<span class=pill>mean score {mean}</span><span class=pill>{s['with_problems']} with problems</span>"
            f"<span class=pill>time median {_seconds(s['median_seconds'])}, max {_seconds(s['max_seconds'])}</span>")
    graded_on = {r["id"]: {x["student"] for x in r["scores"]} for r in report["exercises"]}
    top, shown = MISCONCEPTIONS_SHOWN, OTHERS_SHOWN
    mistakes = "".join(_misconception_row(m, graded_on) for m in report["misconceptions"][:top]) \
        or "<tr><td colspan=3>No recognised mistake.</td></tr>"
    checks = "".join(
        f"<tr><td class=n>{c['learners']}<span class=of>/{len(graded_on.get(c['exercise'], ()))}</span></td>"
        f"<td class=one title=\"{_e(c['title'])}\">{_e(c['title'])}</td><td class=one>{_e(c['exercise'])}</td></tr>"
        for c in report["checks"][:shown]) or "<tr><td colspan=3>No failed check.</td></tr>"
    problems = "".join(
        f"<tr><td class=one>{_e(p['student'])}</td><td class=bad>{_e(p['kind'])}</td><td class=one>{_e(p['where'])}</td>"
        f"<td class=one title=\"{_e(p['detail'])}\">{_e(p['detail'][:200])}</td></tr>" for p in report["problems"][:shown]) \
        or "<tr><td colspan=4>Every submission ran.</td></tr>"
    scores_img = scores_figure(report)
    times_img = times_figure(report)
    figure = (f'<img alt="score per exercise" src="{scores_img}"><div class=names>A dot per learner (x: not defined, '
              'only a NotImplementedError stub, or in a module that does not parse); bar: the mean.</div>' if scores_img else "<p>No exercise was graded.</p>")
    times = (f'<img alt="grading time per learner" src="{times_img}">' if times_img
             else "<p>Time per learner: n/a (this source records none).</p>")
    learner_rows = "".join(
        f"<tr><td>{_e(l['student'])}</td><td class=n>{l['score']:g} / {l['max_score']:g}</td><td>{_e(l['status'])}</td>"
        f"<td class=n>{_seconds(l['seconds'])}</td></tr>" for l in report["learners"])
    all_checks = "".join(
        f"<tr><td class=n>{c['learners']}</td><td>{_e(c['title'])}</td><td>{_e(c['exercise'])}</td>"
        f"<td class=names>{_names(c['students'], 20)}</td></tr>" for c in report["checks"])
    all_mistakes = "".join(
        f"<tr><td class=n>{m['learners']}</td><td>{_e(m['label'])}<div class=where>{_e(m['key'])}</div></td><td>"
        + "".join(f"<div>{_e(e['id'])}: {e['learners']} <span class=where>({_e(e['where'])})</span></div>"
                  for e in m["exercises"])
        + f"</td><td class=names>{_names(m['students'], 50)}</td></tr>"
        for m in report["misconceptions"])
    all_problems = "".join(
        f"<tr><td>{_e(p['student'])}</td><td>{_e(p['kind'])}</td><td>{_e(p['where'])}</td><td>{_e(p['detail'])}</td></tr>"
        for p in report["problems"])
    exercise_rows = "".join(
        f"<tr><td>{_e(r['id'])}</td><td class=n>{r['learners']}</td>"
        f"<td class=n>{_percent(r['mean'])}</td>"
        f"<td class=n>{r['full_marks']}</td><td class=n>{r['zero']}</td><td class=n>{r['not_defined']}</td>"
        f"<td class=n>{r['not_attempted']}</td><td class=n>{r['not_parsed']}</td><td class=where>{_e(r['where'])}</td></tr>"
        for r in report["exercises"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Class report: what to re-teach</title><style>{CSS}</style></head><body>
<h1>What to re-teach</h1>
<div class=sub>{_e(report['source'])} results in {_e(report['folder'])}, read {_e(report['generated_at'])}</div>
<div>{head}</div>
<div class=grid><div>{figure}{times}</div><div>
<h2>Misconceptions (learners who have each / learners graded on its exercises)</h2>
<table><colgroup><col style="width:58px"><col><col style="width:36%"></colgroup>
<tr><th>#</th><th>misconception</th><th>exercises, where to reread</th></tr>{mistakes}</table>
{_more(report['misconceptions'], top)}
<h2>Checks failed most often</h2>
<table><colgroup><col style="width:58px"><col><col style="width:36%"></colgroup>
<tr><th>#</th><th>check</th><th>exercise</th></tr>{checks}</table>{_more(report['checks'], shown)}
<h2>Submissions that errored, hung, crashed, raised or do not parse</h2>
<table><colgroup><col style="width:14%"><col style="width:84px"><col style="width:20%"><col></colgroup>
<tr><th>learner</th><th>what</th><th>where</th><th>detail</th></tr>{problems}</table>
{_more(report['problems'], shown)}
</div></div>
<details><summary>Exercises</summary><table><tr><th>exercise</th><th>learners</th><th>mean</th><th>full marks</th>
<th>zero</th><th>not defined</th><th>not attempted</th><th>does not parse</th><th>where to reread</th></tr>{exercise_rows}</table></details>
<details><summary>Every misconception</summary><table><tr><th>#</th><th>misconception</th><th>exercises: learners
(where to reread)</th><th>learners</th></tr>{all_mistakes}</table></details>
<details><summary>Every failed check</summary><table><tr><th>#</th><th>check</th><th>exercise</th><th>learners</th></tr>
{all_checks}</table></details>
<details><summary>Every problem</summary><table><tr><th>learner</th><th>what</th><th>where</th><th>detail</th></tr>
{all_problems}</table></details>
<details><summary>Learners: score and time</summary><table><tr><th>learner</th><th>score</th><th>status</th>
<th>time</th></tr>{learner_rows}</table></details>
</body></html>
"""
