"""Probes 1-5: position handling that holds for any weights (random ones included).

Each probe takes a handle (course.probe.targets) and returns a Result. Tolerances are
absolute, on float32 outputs of tiny models, and stated in each verdict.
"""
from __future__ import annotations

import math

import torch

from course.probe.report import FAIL, NA, PASS, Result

RELATIVE = {"rope", "alibi", "t5", "relative", "none"}   # scores depend on i - j only ("none": on nothing)
ABSOLUTE = {"learned", "sinusoidal", "absolute"}
SHIFTS = (7, 1000)          # position offsets of the shift test
TOL = 1e-4                  # attention weights, logits (float32) and norm ratios


def _tokens(handle, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, handle.vocab, (B, T), generator=g)


def _maxdiff(a, b) -> float:
    return float((a.double() - b.double()).abs().max())


def _tol(reference) -> float:
    """TOL relative to the size of the reference values (at least TOL itself)."""
    return TOL * max(1.0, float(reference.abs().max()))


def _causal_log(att):
    """Attention weights -> their logs on the causal triangle (scores up to a constant per row,
    which softmax ignores); scores -> the causal triangle as they are."""
    i, j = torch.tril_indices(att.shape[-2], att.shape[-1])
    return att[..., i, j]


# ---------------------------------------------------------------------------------- 1
def shift(handle) -> Result:
    """Adding the same offset to every position id leaves a relative scheme's attention unchanged."""
    title = "shift test"
    if "position_ids" not in handle.accepts:
        return Result("shift", title, NA, "positions are not an input of this model (no position_ids): nothing to shift")
    ids, T = _tokens(handle, 1, 16, 1), 16
    pos = torch.arange(T)[None]
    reachable = handle.attention(ids, pos) is not None
    used = handle.attention_kind if reachable else "logits"
    look = (lambda p: handle.attention(ids, p)) if reachable else (lambda p: handle.logits(ids, p))

    def comparable(x):
        if used == "attention weights":
            return _causal_log(x.double().clamp(min=1e-300).log())
        return _causal_log(x) if used != "logits" else x

    base, diffs, errors, shifted = look(pos), {}, {}, {}
    tol = _tol(comparable(base))
    for s in SHIFTS:
        try:
            shifted[s] = look(pos + s)
            diffs[s] = _maxdiff(comparable(base), comparable(shifted[s]))
        except Exception as err:  # noqa: BLE001 - e.g. an absolute table too short
            errors[s] = f"{type(err).__name__}: {str(err)[:120]}"
    changed = {s: d for s, d in diffs.items() if d > tol}
    used = "log attention weights" if used == "attention weights" else used
    values = {"compared": used, "tolerance": tol, "max_abs_diff_by_shift": diffs, "errors": errors}
    plot = _shift_plot(base, shifted, used) if shifted else None
    text = ", ".join(f"+{s}: {d:.1e}" for s, d in diffs.items()) + "".join(f", +{s}: raised {e}" for s, e in errors.items())
    scheme = handle.scheme
    if scheme in ABSOLUTE:
        verdict = "scores change" if changed or errors else "scores unchanged (are the position ids ignored?)"
        return Result("shift", title, NA, f"absolute ({scheme}): {verdict} ({text}): information, not a test",
                      values, plot)
    if scheme in RELATIVE or scheme is None:
        if not changed and not errors:
            return Result("shift", title, PASS, f"{used} unchanged by shifting every position ({text}; tol {tol:.1g})",
                          values, plot)
        if scheme is None:
            return Result("shift", title, NA, f"scheme undeclared and {used} change ({text}): absolute positions; "
                          "declare `position_scheme` to make this a test", values, plot)
        return Result("shift", title, FAIL, f"{scheme} is relative but its {used} change when every position "
                      f"is shifted ({text}; tol {tol:.1g}): angles or biases computed from absolute positions "
                      "in low precision?", values, plot)
    return Result("shift", title, NA, f"scheme {scheme!r} unknown to the probe ({text})", values, plot)


def _shift_plot(base, shifted, used):
    def plot(fig):
        s = max(shifted)
        if used != "logits":
            a, b = base[0, 0], shifted[s][0, 0]
            if used.startswith("log"):  # log weights; masked entries (weight 0) left blank
                hidden = torch.ones_like(a, dtype=torch.bool).triu(1)
                a = a.double().clamp(min=1e-300).log().masked_fill(hidden, float("nan"))
                b = b.double().clamp(min=1e-300).log().masked_fill(hidden, float("nan"))
            a, b = a.numpy(), b.numpy()
        else:
            a, b = base[0].numpy(), shifted[s][0].numpy()
        for k, (m, t) in enumerate(((a, "positions 0.."), (b, f"positions {s}.."), (b - a, "difference"))):
            ax = fig.add_subplot(1, 3, k + 1)
            im = ax.imshow(m, aspect="auto", cmap="RdBu_r" if k == 2 else "viridis")
            ax.set_title(f"{used} (head 0), {t}" if used != "logits" else f"logits, {t}", fontsize=8)
            fig.colorbar(im, ax=ax)
    return plot


# ---------------------------------------------------------------------------------- 2
def cache(handle) -> Result:
    """Feeding tokens one at a time with the cache gives the logits of one full forward pass."""
    title = "cached decoding = full pass"
    if "cache" not in handle.accepts:
        return Result("cache", title, NA, "the model takes no past key values (no cached decoding)")
    prompt, cont = _tokens(handle, 1, 6, 2), _tokens(handle, 1, 8, 3)
    full = handle.logits(torch.cat([prompt, cont], 1))[:, prompt.shape[1]:]
    cached = handle.cached_logits(prompt, cont)
    if cached is None:
        return Result("cache", title, NA, "cached decoding not reachable for this model")
    per_token = (full.double() - cached.double()).abs().amax(dim=(0, 2))
    worst, tol = float(per_token.max()), _tol(full)
    values = {"tolerance": tol, "max_abs_diff_per_token": [float(x) for x in per_token]}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.semilogy(range(1, len(per_token) + 1), per_token.clamp(min=1e-12).numpy(), "o-")
        ax.axhline(tol, color="r", ls="--", label=f"tolerance {tol:.1g}")
        ax.set_xlabel("generated token"), ax.set_ylabel("max |cached - full| logit"), ax.legend()

    if worst <= tol:
        return Result("cache", title, PASS, f"{len(per_token)} generated tokens, max logit diff {worst:.1e} "
                      f"(tol {tol:.1g})", values, plot)
    first = int((per_token > tol).nonzero()[0]) + 1
    return Result("cache", title, FAIL, f"generated token {first} differs from the full pass by {worst:.2g} "
                  f"(tol {tol:.1g}): generated tokens numbered from 0 instead of after the cache?", values, plot)


# ---------------------------------------------------------------------------------- 3
def padding(handle) -> Result:
    """Left padding, right padding and no padding give the real tokens the same logits."""
    title = "left = right = no padding"
    if "attention_mask" not in handle.accepts:
        return Result("padding", title, NA, "the model takes no attention mask (no padding)")
    ids, n, pad = _tokens(handle, 1, 8, 4), 3, 0
    ref = handle.logits(ids)
    tol = _tol(ref)
    with_pos = "position_ids" in handle.accepts
    out, per_token = {}, {}
    for side in ("right", "left"):
        pads = torch.full((1, n), pad)
        x = torch.cat([ids, pads], 1) if side == "right" else torch.cat([pads, ids], 1)
        mask = torch.cat([torch.ones(1, 8), torch.zeros(1, n)], 1) if side == "right" else \
            torch.cat([torch.zeros(1, n), torch.ones(1, 8)], 1)
        mask = mask.long()
        pos = (mask.cumsum(-1) - 1).clamp(min=0) if with_pos else None
        logits = handle.logits(x, position_ids=pos, attention_mask=mask)
        real = logits[:, :8] if side == "right" else logits[:, n:]
        per_token[side] = (real.double() - ref.double()).abs().amax(dim=(0, 2))
        out[side] = float(per_token[side].max())
    values = {"tolerance": tol, "max_abs_diff": out, "position_ids_from_mask": with_pos}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        for side, d in per_token.items():
            ax.semilogy(range(8), d.clamp(min=1e-12).numpy(), "o-", label=f"{side} padding vs none")
        ax.axhline(tol, color="r", ls="--", label=f"tolerance {tol:.1g}")
        ax.set_xlabel("real token"), ax.set_ylabel("max |logit diff|"), ax.legend(fontsize=8)

    how = "position ids from the attention mask" if with_pos else "the model's own positions"
    text = f"left {out['left']:.1e}, right {out['right']:.1e} (tol {tol:.1g}; {how})"
    if max(out.values()) <= tol:
        return Result("padding", title, PASS, text, values, plot)
    hint = (": left padding changes the real tokens: position ids not taken from the attention mask "
            "(absolute schemes), or padding not masked?") if out["left"] > tol >= out["right"] else ""
    return Result("padding", title, FAIL, text + hint, values, plot)


# ---------------------------------------------------------------------------------- 4
def rope_norm(handle) -> Result:
    """Rotating queries and keys keeps the length of every vector."""
    title = "RoPE keeps q/k norms"
    if handle.scheme not in ("rope", None):
        return Result("rope_norm", title, NA, f"no RoPE ({handle.scheme})")
    seen = handle.rope_norms(_tokens(handle, 2, 16, 5))
    if seen is None:
        why = handle.unreachable.get("rope") or (
            "the rotary step cannot be reached" + (" (no apply_rope method)" if handle.sandboxed else ""))
        return Result("rope_norm", title, NA, why)
    before, after = seen
    keep = before > 1e-6
    ratio = after[keep] / before[keep]
    worst = float((ratio - 1).abs().max())
    values = {"tolerance": TOL, "vectors": int(keep.sum()), "max_abs_ratio_minus_1": worst,
              "ratio_min": float(ratio.min()), "ratio_max": float(ratio.max())}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.hist((ratio - 1).numpy(), bins=40)
        ax.set_xlabel("|rotated| / |original| - 1  (queries and keys)"), ax.set_ylabel("vectors")

    text = f"{int(keep.sum())} query/key vectors, max |ratio - 1| = {worst:.1e} (tol {TOL:g})"
    if worst <= TOL:
        return Result("rope_norm", title, PASS, text, values, plot)
    return Result("rope_norm", title, FAIL, text + ": not a rotation (sign of rotate_half, pairing, or scaled cos/sin)",
                  values, plot)


# ---------------------------------------------------------------------------------- 5
def paper_slopes(n_heads: int) -> list[float]:
    """Press et al. (2022): 2^(-8i/n) for n a power of two; otherwise those of the closest
    lower power of two, then every other slope of twice that many heads."""
    def geometric(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    closest = 2 ** int(math.floor(math.log2(n_heads)))
    return geometric(closest) + geometric(2 * closest)[0::2][: n_heads - closest]


def alibi(handle) -> Result:
    """ALiBi's bias is -m_h (i - j) with the paper's slope for each head."""
    title = "ALiBi slopes and bias"
    if handle.scheme not in ("alibi", None):
        return Result("alibi", title, NA, f"no ALiBi ({handle.scheme})")
    T = 16
    bias = handle.alibi_bias(T)
    if bias is None:
        return Result("alibi", title, NA, "no ALiBi bias reachable" + (" (no alibi_bias method or alibi_slopes)"
                                                                         if handle.sandboxed else ""))
    bias = bias.double()
    H = bias.shape[0]
    i, j = torch.tril_indices(T, T, offset=-1)
    dist = (i - j).double()
    rel = bias[:, i, j] - bias[:, i, i]                 # (H, pairs): should be -m_h * distance
    slopes = -(rel / dist).mean(1)
    linear = float((rel + slopes[:, None] * dist).abs().max())
    expected = torch.tensor(paper_slopes(H), dtype=torch.float64)
    off = float(((slopes - expected).abs() / expected).max())
    values = {"heads": H, "slopes": [float(s) for s in slopes], "paper": [float(s) for s in expected],
              "max_rel_slope_error": off, "max_nonlinearity": linear}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        d = torch.arange(T)
        for h in range(H):
            line, = ax.plot(d, bias[h, T - 1, T - 1 - d].numpy(), "-", lw=1, label=f"head {h}")
            ax.plot(d, (-expected[h] * d).numpy(), ":", color=line.get_color(), lw=1)
        ax.set_xlabel("distance i - j"), ax.set_ylabel("bias (dotted: paper)")
        ax.legend(fontsize=6, ncol=2)

    text = f"{H} heads, slopes within {off:.1e} of the paper's rule, bias linear in distance to {linear:.1e}"
    if off <= 1e-5 and linear <= 1e-5 * max(1.0, float(bias.abs().max())):
        return Result("alibi", title, PASS, text, values, plot)
    pow2 = torch.tensor([2.0 ** (-8.0 * (k + 1) / H) for k in range(H)], dtype=torch.float64)
    hint = ""
    if float(((slopes - pow2).abs() / pow2).max()) < 1e-5 and H & (H - 1):
        hint = f": slopes are 2^(-8i/{H}), the power-of-two rule applied to {H} heads"
    elif linear > 1e-5:
        hint = ": the bias is not linear in the distance"
    return Result("alibi", title, FAIL, text + hint, values, plot)


PROBES = {"shift": shift, "cache": cache, "padding": padding, "rope_norm": rope_norm, "alibi": alibi}
