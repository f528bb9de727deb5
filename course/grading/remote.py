"""What the hidden suites see of the learner's code: the ``submission`` fixture's value.

``SubmissionProxy`` gives the learner's names as ``RemoteObject`` s living in the learner's
process (course.sandbox.learner_process): calling one sends copies of the arguments and
returns copies of the results. Nothing the learner's process says is trusted beyond "these
are my values": pass or fail is decided in the grader, on copies. The in-place and device
verdicts rest on such values too (the arguments' state after a call, the devices of a result),
which code patching the learner's process can forge (README, "Not guaranteed").
"""
from __future__ import annotations

import numpy as np
import torch

from course.checking import call_text
from course.sandbox.learner_process import LearnerProcess, SubmissionCrashed, clip_text


def _labelled_tensors(args, kwargs) -> list:
    labelled = [(f"argument {i + 1}", a) for i, a in enumerate(args)] + [(f"argument '{k}'", v) for k, v in kwargs.items()]
    return [(label, t) for label, t in labelled if isinstance(t, torch.Tensor) and t.device.type != "meta"]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return torch.equal(a, b)


def _mutated(args, kwargs, after) -> list[str]:
    """Labels of the tensor arguments whose copy in the learner's process changed during the call
    (compared here, with the grader's torch, against what was sent)."""
    sent = _labelled_tensors(args, kwargs)
    try:
        returned = {label: value for label, value in after}
    except (TypeError, ValueError):
        return [label for label, _ in sent]
    return [label for label, before in sent
            if not (isinstance(returned.get(label), torch.Tensor) and _same(before, returned[label]))]


def _to_wire(value):
    if isinstance(value, RemoteObject):
        return value._target
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, (list, tuple)):
        items = [_to_wire(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def _from_wire(value, sandbox: LearnerProcess, label: str):
    if isinstance(value, dict):
        if "__ref__" in value:
            return RemoteObject(sandbox, {"__ref__": value["__ref__"]}, f"{label} (a {clip_text(value.get('__type__'), 100)})")
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy()
        if "__device__" in value:
            return torch.device(value["__device__"])
        return {k: _from_wire(v, sandbox, label) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v, sandbox, label) for v in value]
    if isinstance(value, tuple):
        return tuple(_from_wire(v, sandbox, label) for v in value)
    return value


class RemoteObject:
    """A function, class or object living in the learner's process."""

    def __init__(self, sandbox: LearnerProcess, target: dict, label: str):
        self._sandbox, self._target, self._label = sandbox, target, label
        self._generation = sandbox.generation

    def _check_alive(self):
        if "__ref__" in self._target and self._generation != self._sandbox.generation:
            raise SubmissionCrashed(f"{self._label} was lost when your code ended its process in an earlier call")

    def __call__(self, *args, **kwargs):
        self._check_alive()
        call = call_text(self._label, *args, **kwargs)
        wire_args, wire_kwargs = _to_wire(args), _to_wire(kwargs)
        reply = self._sandbox.request({"op": "call", "target": self._target, "args": wire_args, "kwargs": wire_kwargs}, call)
        if not isinstance(reply, dict) or "result" not in reply:
            raise SubmissionCrashed(f"{call}: your code tampered with the grading channel")
        self._sandbox.last_mutated = _mutated(wire_args, wire_kwargs, reply.get("after"))
        return _from_wire(reply["result"], self._sandbox, call)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._check_alive()
        label = f"{self._label}.{attr}"
        value = self._sandbox.request({"op": "getattr", "target": self._target, "attr": attr}, label)
        return _from_wire(value, self._sandbox, label)

    def __repr__(self):
        return f"<learner's {self._label}>"


class SubmissionProxy:
    """The learner's submission as the hidden suites see it (the `submission` fixture)."""

    def __init__(self, sandbox: LearnerProcess, defined: dict[str, str], bound: dict | None = None):
        # bound: names an adapter made -> how to reach them by reference (course.grading.adapters.Bound)
        self._sandbox, self._defined, self._bound = sandbox, defined, bound or {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._defined:
            raise AssertionError(f"`{name}` is not defined in your submission")
        target = self._bound[name].target(name) if name in self._bound else {"__global__": name}
        return RemoteObject(self._sandbox, target, name)

    def defines(self, name: str) -> bool:
        return name in self._defined

    def define(self, name: str, source: str, label: str = "") -> RemoteObject:
        """Define a grader helper (e.g. a score function to pass to the learner's code) in the
        learner's process; `source` must define `name`. It survives restarts."""
        if name in self._defined:
            raise ValueError(f"{name} would shadow the learner's own definition")
        entry = (f"grader's {name}", source)
        if entry not in self._sandbox.definitions:
            self._sandbox.definitions.append(entry)
        self._sandbox.request({"op": "exec", "label": entry[0], "code": source}, f"defining {name}")
        return RemoteObject(self._sandbox, {"__global__": name}, label or name)

    def on_second_device(self, fn: RemoteObject, *args, **kwargs) -> dict:
        """Call fn (a learner's function or module) with its tensor arguments on a GPU, or on the
        emulated device of course.sandbox.second_device when there is none. Returns {"device",
        "emulated", "devices" (of each returned tensor), "result" (copied back)}."""
        fn._check_alive()
        call = call_text(fn._label, *args, **kwargs)
        message = {"op": "call_on_second_device", "target": fn._target, "args": _to_wire(args),
                   "kwargs": _to_wire(kwargs)}
        reply = self._sandbox.request(message, call)
        if not isinstance(reply, dict) or not {"device", "emulated", "devices", "result"} <= set(reply):
            raise SubmissionCrashed(f"{call}: your code tampered with the grading channel")
        return {**reply, "result": _from_wire(reply["result"], self._sandbox, call)}

    def second_device(self) -> dict:
        """Which second device on_second_device uses: {"device", "emulated"}."""
        return self._sandbox.request({"op": "second_device"}, "choosing a second device")

    def mutated_inputs(self) -> list[str]:
        """Arguments the last call changed in place, e.g. ['argument 1']: the grader's copy of what it
        sent against the state the learner's process reports after the call (missing: changed)."""
        return list(self._sandbox.last_mutated)

    def grads(self, module: RemoteObject, *args, upstream=None, **kwargs) -> dict:
        """Run module(*args), backpropagate `upstream` (default ones); gradients by parameter name,
        and under "weight" the gradient of `module.weight` whatever its registered name."""
        module._check_alive()
        call = call_text(f"{module._label} forward/backward", *args, **kwargs)
        message = {"op": "grads", "target": module._target, "args": _to_wire(args), "kwargs": _to_wire(kwargs),
                   "upstream": upstream}
        return self._sandbox.request(message, call)

    def type_names(self, obj: RemoteObject, attr: str | None = None) -> list[str]:
        """Qualified class names along the MRO of obj (or of obj.attr)."""
        obj._check_alive()
        return self._sandbox.request({"op": "type_names", "target": obj._target, "attr": attr}, obj._label)
