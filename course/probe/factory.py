"""``path/to/file.py:factory``: your own model, probed through the course's sandbox.

The file runs in a sandboxed learner process (course.sandbox: forked from the fork server,
confined, time- and memory-limited); ``factory()`` builds the model there, and the probes
call it through ``SubmissionProxy``, getting copies of tensors back. With
``in_process=True`` the file is imported into this process instead (no protection at all).

The minimal interface (all but the first line optional; what is absent makes a probe n/a)::

    model = factory()                      # an nn.Module (put in eval mode by the probe)
    model(input_ids)                       # (B, T) int64 -> logits (B, T, V), or a tuple or
                                           # object whose first item / .logits are the logits
    model(input_ids, position_ids=...)     # (B, T) int64                       -> shift test
    model(input_ids, attention_mask=...)   # (B, T) 1 = real token, 0 = padding -> padding test
    model(input_ids, past_key_values=past, use_cache=True) -> (logits, past) or an object with
                                           # .logits, .past_key_values; the model numbers the
                                           # new tokens itself (no position_ids)  -> cache test
    model.position_scheme                  # "rope", "alibi", "t5", "relative", "learned",
                                           # "sinusoidal", "absolute", "none"
    model.train_len                        # the trained length (default 32)
    model.attention_scores(input_ids, position_ids=None) -> first-layer scores (B, H, T, T)
    model.apply_rope(x, position_ids)      # x (B, H, T, model.head_dim) -> rotated x
    model.alibi_bias(T) -> (H, T, T) bias added to scores, or model.alibi_slopes (H,)

What the model says of itself is checked here, never trusted (read_description, _checked): in
the sandbox even the helpers' answers are the learner's process's word. Every size it declares
is bounded before anything is allocated for it.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import torch

from course.probe.targets import Handle, Unusable

HELPERS = '''
def _course_probe_describe(model):
    import inspect
    if callable(getattr(model, "eval", None)):
        model.eval()
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    names = set(params)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        names.add("**")
    def plain(attr, kind):
        value = getattr(model, attr, None)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None
    return {"params": sorted(names), "position_scheme": plain("position_scheme", str),
            "train_len": plain("train_len", int), "head_dim": plain("head_dim", int),
            "has": [m for m in ("attention_scores", "apply_rope", "alibi_bias", "alibi_slopes") if hasattr(model, m)]}

def _course_probe_logits(out):
    if hasattr(out, "logits"):
        return out.logits
    return out[0] if isinstance(out, (tuple, list)) else out

def _course_probe_forward(model, ids, **kwargs):
    import torch
    with torch.no_grad():
        return _course_probe_logits(model(ids, **kwargs)).float()

def _course_probe_cached(model, prompt, continuation):
    import torch
    def split(out):
        if hasattr(out, "past_key_values"):
            return out.logits, out.past_key_values
        return out[0], out[1]
    with torch.no_grad():
        _, past = split(model(prompt, use_cache=True))
        steps = []
        for t in range(continuation.shape[1]):
            logits, past = split(model(continuation[:, t:t + 1], past_key_values=past, use_cache=True))
            steps.append(logits[:, -1].float())
    return torch.stack(steps, 1)

def _course_probe_rope(model, ids, head_dim):
    import torch
    T = ids.shape[1]
    x = torch.randn(2, 4, T, head_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = model.apply_rope(x, torch.arange(T)[None].expand(2, T))
    return x.norm(dim=-1).flatten().double(), y.norm(dim=-1).flatten().double()

def _course_probe_alibi(model, T):
    import torch
    with torch.no_grad():
        if hasattr(model, "alibi_bias"):
            return model.alibi_bias(T).double()
        slopes = torch.as_tensor(model.alibi_slopes).double().flatten()
        i = torch.arange(T)
        return -slopes[:, None, None] * (i[:, None] - i[None, :]).clamp(min=0).double()

def _course_probe_scores(model, ids, position_ids=None):
    import torch
    with torch.no_grad():
        kwargs = {} if position_ids is None else {"position_ids": position_ids}
        return model.attention_scores(ids, **kwargs).float()
'''

HELPER_NAMES = ("describe", "forward", "cached", "rope", "alibi", "scores")
METHODS = ("attention_scores", "apply_rope", "alibi_bias", "alibi_slopes")
MAX_HEAD_DIM = 4096  # the rotary probe makes (2, 4, T, head_dim) vectors with the model's head_dim
WARNING = ("WARNING: running {spec} IN THIS PROCESS, without the sandbox: its code can do anything "
           "you can do. Use this only for code you trust.")


def _local_helpers(namespace: dict) -> dict:
    """The probe's helpers defined in `namespace` (this process), by name."""
    exec(HELPERS, namespace)
    return {h: namespace[f"_course_probe_{h}"] for h in HELPER_NAMES}


def zoo_handle(letter: str) -> "FactoryHandle":
    """Specimen `letter` of the course's bug zoo (course.zoo), in this process: course code, so no
    sandbox, and the same helpers as a factory's."""
    from course import zoo

    model = zoo.specimen(letter)
    handle = FactoryHandle(f"zoo:{letter}", model, _local_helpers({}), closer=None, sandboxed=False)
    handle.notes.append(f"claims: {zoo.claim(letter)}")
    return handle


def parse(spec: str) -> tuple[Path, str]:
    path, sep, name = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not name.isidentifier():
        raise ValueError(f"a model target is path/to/file.py:factory, got {spec!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    return path, name


class FactoryError(RuntimeError):
    """The factory gives no model the probes can call (python -m course.probe: exit status 2, the reason)."""


def _raised(err: Exception) -> str:
    """'TypeError: message', for the model's own exceptions as for those re-raised from its sandbox."""
    return f"{getattr(err, 'learner_type', type(err).__name__)}: {str(err)[:300]}"


def factory_handle(spec: str, in_process: bool = False, limits=None) -> "FactoryHandle":
    path, name = parse(spec)
    source = path.read_text(encoding="utf-8")
    if in_process:
        print(WARNING.format(spec=spec), file=sys.stderr)
        namespace = {"__name__": f"course_probe_target_{path.stem}", "__file__": str(path.resolve())}
        exec(compile(source, str(path), "exec"), namespace)
        if not callable(namespace.get(name)):
            raise ValueError(f"{path} defines no function {name!r}")
        helpers = _local_helpers(namespace)
        try:
            model = namespace[name]()
        except Exception as err:  # noqa: BLE001 - the factory's failure is the reason given
            raise FactoryError(f"{spec}() raised {_raised(err)}") from None
        return FactoryHandle(spec, model, helpers, closer=None, sandboxed=False)
    from course.grading.grader import opened
    from course.grading.remote import RemoteObject, SubmissionProxy
    from course.sandbox.limits import Limits

    # (a model's file, not a submission: no course convention is looked for in it)
    limits = limits or Limits(call_seconds=60, cell_seconds=120, exercise_seconds=900, file_seconds=900)
    process = contextlib.ExitStack()
    learner = process.enter_context(opened(path, replace(limits, conventions=False))).learner
    try:
        failed = [o.error for o in learner.outcomes if o.error]
        if failed:
            raise RuntimeError(f"{path} raised when run in the sandbox: {failed[0]}")
        proxy = SubmissionProxy(learner, learner.defined([name]))
        if not proxy.defines(name):
            raise ValueError(f"{path} defines no function {name!r}")
        proxy.define("_course_probe_describe", HELPERS)  # defines every helper (replayed after a restart)
        helpers = {h: RemoteObject(learner, {"__global__": f"_course_probe_{h}"}, f"probe helper {h}")
                   for h in HELPER_NAMES}
        try:
            model = getattr(proxy, name)()
        except Exception as err:  # noqa: BLE001 - the factory's failure (or its process's) is the reason given
            raise FactoryError(f"{spec}() raised {_raised(err)}") from None
        return FactoryHandle(spec, model, helpers, closer=process.close, sandboxed=True)
    except BaseException:
        process.close()
        raise


def _whole(value, low: int, high: float = float("inf")) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _names(value, allowed=None) -> set[str]:
    """The strings of a list the model's process sent (among `allowed`)."""
    names = {v for v in value if isinstance(v, str)} if isinstance(value, (list, tuple)) else set()
    return names if allowed is None else names & set(allowed)


def _said(value) -> str:
    return repr(value)[:60]


def read_description(info) -> tuple[dict, list[str]]:
    """The model's description (see HELPERS) as the probes may use it, and a note for each thing that
    could not be: in the sandbox it is the word of the learner's process (its helper can be rebound),
    so every type is checked and every size bounded here."""
    notes = []
    if not isinstance(info, dict):
        notes.append(f"its description could not be read (got {_said(info)})")
        info = {}
    scheme, train_len, head_dim = info.get("position_scheme"), info.get("train_len"), info.get("head_dim")
    if scheme is not None and not (isinstance(scheme, str) and len(scheme) <= 40):
        notes.append(f"position_scheme {_said(scheme)} is not a short string: taken as undeclared")
        scheme = None
    if train_len is None:
        notes.append("no train_len attribute: nominal trained length 32")
    elif not _whole(train_len, 1):
        notes.append(f"train_len {_said(train_len)} is not a whole number of tokens: nominal trained length 32")
        train_len = None
    unreachable = {}
    if head_dim is not None and not (_whole(head_dim, 2, MAX_HEAD_DIM) and head_dim % 2 == 0):
        unreachable["rope"] = f"head_dim {_said(head_dim)} is not an even size up to {MAX_HEAD_DIM}"
        head_dim = None
    return {"params": _names(info.get("params")), "has": _names(info.get("has"), METHODS), "scheme": scheme,
            "train_len": train_len or 32, "head_dim": head_dim, "unreachable": unreachable}, notes


def _checked(value, what: str, shape: tuple):
    """`value` if it is a floating tensor of `shape` (None: any size there), else Unusable saying what came back."""
    fits = (isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() == len(shape)
            and all(want is None or got == want for got, want in zip(value.shape, shape)))
    if not fits:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else _said(value)
        want = ", ".join("any" if n is None else str(n) for n in shape)
        raise Unusable(f"{what} returned {got}, not a floating tensor of shape ({want})")
    return value


class FactoryHandle(Handle):
    """A model behind the interface in this module's docstring (a remote object when sandboxed)."""

    def __init__(self, spec, model, helpers, closer, sandboxed):
        self.model, self.h, self._closer = model, helpers, closer
        try:
            info, notes = read_description(helpers["describe"](model))
            logits = helpers["forward"](model, torch.ones(1, 2, dtype=torch.long))
        except Exception as err:  # noqa: BLE001 - the model's failure is the reason given
            raise FactoryError(f"its model cannot be probed: its forward on token ids (1, 2) raised {_raised(err)}") \
                from None
        try:
            vocab = _checked(logits, "its forward on token ids (1, 2)", (1, 2, None)).shape[-1]
        except Unusable as err:
            raise FactoryError(f"its model cannot be probed: {err}") from None
        params = info["params"]
        accepts = {k for k in ("position_ids", "attention_mask") if k in params or "**" in params}
        if {"past_key_values", "use_cache"} <= params or "**" in params:
            accepts.add("cache")
        super().__init__(name=spec, vocab=vocab, train_len=info["train_len"], scheme=info["scheme"],
                         accepts=accepts, sandboxed=sandboxed, notes=notes, unreachable=info["unreachable"])
        self.has, self.head_dim = info["has"], info["head_dim"]
        self.attention_kind = "attention scores"
        if not sandboxed:
            self.notes.append("run IN PROCESS, not sandboxed")

    def logits(self, ids, position_ids=None, attention_mask=None):
        kw = {k: v for k, v in (("position_ids", position_ids), ("attention_mask", attention_mask)) if v is not None}
        return _checked(self.h["forward"](self.model, ids, **kw), "its forward", (*ids.shape, self.vocab))

    def attention(self, ids, position_ids=None):
        if "attention_scores" not in self.has:
            return None
        B, T = ids.shape
        return _checked(self.h["scores"](self.model, ids, position_ids), "its attention_scores", (B, None, T, T))

    def cached_logits(self, prompt, continuation):
        if "cache" not in self.accepts:
            return None
        return _checked(self.h["cached"](self.model, prompt, continuation), "its forward with the cache",
                        (*continuation.shape, self.vocab))

    def rope_norms(self, ids):
        if "apply_rope" not in self.has or not self.head_dim:
            return None
        norms = self.h["rope"](self.model, ids, self.head_dim)
        if not (isinstance(norms, (tuple, list)) and len(norms) == 2):
            raise Unusable(f"the norms of its apply_rope came back as {_said(norms)}")
        return tuple(_checked(n, "its apply_rope", (2 * 4 * ids.shape[1],)) for n in norms)

    def alibi_bias(self, T):
        if not {"alibi_bias", "alibi_slopes"} & self.has:
            return None
        return _checked(self.h["alibi"](self.model, T), "its alibi_bias (or alibi_slopes)", (None, T, T))

    def close(self):
        if self._closer is not None:
            self._closer()
            self._closer = None
