"""The learner's process: runs the submission's cells and answers the grader's requests.

Forked by the zygote (course.sandbox.zygote) with its channel to the grader on fd 3.
Nothing here decides pass or fail: it only executes code and copies values out (a
learner can patch anything in this process, so the grader trusts nothing it says beyond
"these are my values").
"""
from __future__ import annotations

import builtins
import linecache
import socket
import traceback

import torch

from course.sandbox import protocol

CELL_PREFIX = "<cell "
RUN_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}


class _FakeIPython:
    """Enough of get_ipython() for transformed magics: shell escapes and magics do nothing."""

    def __init__(self, namespace):
        self.user_ns = namespace

    def run_line_magic(self, name, line, *args, **kwargs):
        return None

    def run_cell_magic(self, name, line, cell):
        if name in RUN_CELL_MAGICS:
            exec(compile(cell, "<cell magic>", "exec"), self.user_ns)
        return None

    def system(self, *args, **kwargs):
        return None

    def getoutput(self, *args, **kwargs):
        return []

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class Objects:
    """Values that cannot be copied out stay here; the grader holds their ids."""

    def __init__(self):
        self.by_id = {}

    def keep(self, value):
        key = id(value)
        self.by_id[key] = value
        return {"__ref__": key, "__type__": type(value).__qualname__}

    def get(self, ref):
        return self.by_id[ref]


def encode(value, objects: Objects, depth=0):
    """Copy a value into plain tensors and containers; keep everything else as a reference."""
    if depth > 20:
        raise ValueError("value nested too deeply to copy")
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor).clone()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.dtype,)):
        return value
    if isinstance(value, torch.Size):
        return tuple(int(v) for v in value)
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, (list, tuple)):
        items = [encode(v, objects, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: encode(v, objects, depth + 1) for k, v in value.items()}
    module = type(value).__module__
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value)).clone()}
        if isinstance(value, np.generic):
            return value.item()
    return objects.keep(value)


def decode(value, objects: Objects):
    if isinstance(value, dict):
        if "__ref__" in value:
            return objects.get(value["__ref__"])
        if "__global__" in value:
            return _NAMESPACE[value["__global__"]]
        return {k: decode(v, objects) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, objects) for v in value]
    if isinstance(value, tuple):
        return tuple(decode(v, objects) for v in value)
    return value


def learner_traceback(err: BaseException) -> str:
    """The frames of the learner's own code, then the error line."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(CELL_PREFIX)]
    lines = traceback.format_list(frames[-4:]) + traceback.format_exception_only(type(err), err)
    return "".join(lines).rstrip()


def error_payload(err: BaseException) -> dict:
    builtin = next((c.__name__ for c in type(err).__mro__ if getattr(builtins, c.__name__, None) is c), "Exception")
    return {"ok": False, "error": {"type": type(err).__name__, "builtin": builtin, "message": str(err),
                                   "traceback": learner_traceback(err)}}


def _tensor_args(args, kwargs):
    labelled = [(f"argument {i + 1}", a) for i, a in enumerate(args)] + [(f"argument '{k}'", v) for k, v in kwargs.items()]
    return [(label, t) for label, t in labelled if isinstance(t, torch.Tensor) and t.device.type != "meta"]


_NAMESPACE: dict = {}


def run_cell(label: str, code: str):
    filename = f"{CELL_PREFIX}{label}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    exec(compile(code, filename, "exec"), _NAMESPACE)


def handle(message: dict, objects: Objects):
    op = message["op"]
    if op == "exec":
        run_cell(message["label"], message["code"])
        return None
    if op == "defined":
        return {name: ("class" if isinstance(_NAMESPACE[name], type) else "callable" if callable(_NAMESPACE[name])
                       else "value") for name in message["names"] if name in _NAMESPACE}
    target = decode(message.get("target"), objects)
    if op == "call":
        args, kwargs = decode(message["args"], objects), decode(message["kwargs"], objects)
        result = target(*args, **kwargs)
        # The arguments as they are after the call: the grader compares them with what it sent.
        after = [(label, encode(t, objects)) for label, t in _tensor_args(args, kwargs)]
        return {"result": encode(result, objects), "after": after}
    if op == "second_device":
        from course.sandbox.second_device import second_device

        return second_device()
    if op == "call_on_second_device":
        from course.sandbox.second_device import call_on_second_device

        args, kwargs = decode(message["args"], objects), decode(message["kwargs"], objects)
        return encode(call_on_second_device(target, args, kwargs), objects)
    if op == "getattr":
        return encode(getattr(target, message["attr"]), objects)
    if op == "type_names":
        value = target if message.get("attr") is None else getattr(target, message["attr"])
        return [f"{c.__module__}.{c.__qualname__}" for c in type(value).__mro__]
    if op == "grads":
        args, kwargs = decode(message["args"], objects), decode(message["kwargs"], objects)
        for p in target.parameters():
            p.grad = None
        out = target(*args, **kwargs)
        upstream = message.get("upstream")
        out.backward(torch.ones_like(out) if upstream is None else upstream.to(out.dtype))
        return {name: (None if p.grad is None else p.grad.detach().clone()) for name, p in target.named_parameters()}
    raise ValueError(f"unknown request {op!r}")


def serve(sock: socket.socket) -> None:
    objects = Objects()
    _NAMESPACE.update({"__name__": "__main__", "__builtins__": builtins})
    builtins.get_ipython = lambda: _FakeIPython(_NAMESPACE)  # notebooks call it after transformation
    while True:
        try:
            message = protocol.recv(sock)
        except protocol.ChannelClosed:
            return
        seq = message.get("seq") if isinstance(message, dict) else None
        try:
            reply = {"ok": True, "value": handle(message, objects)}
        except BaseException as err:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from learner code too
            reply = error_payload(err)
        reply["seq"] = seq
        try:
            protocol.send(sock, reply)
        except Exception as err:  # noqa: BLE001 - the value could not be copied out
            protocol.send(sock, {**error_payload(TypeError(f"the returned value could not be copied: {err}")), "seq": seq})

