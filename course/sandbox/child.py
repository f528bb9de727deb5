"""The learner's process: runs the submission's cells and answers the grader's requests.

Forked by the fork server (course.sandbox.fork_server) with its channel to the grader on fd 3.
Nothing here decides pass or fail: it only executes code and copies values out (a
learner can patch anything in this process, so the grader trusts nothing it says beyond
"these are my values").
"""
from __future__ import annotations

import __future__
import builtins
import importlib
import importlib.util
import inspect
import linecache
import os
import re
import shlex
import socket
import sys
import traceback
import types

import torch

from course.sandbox import protocol

CELL_PREFIX = "<cell "
MESSAGE_CHARS = 10_000  # of an error message or traceback sent (the grader shows 2,000; a reply's JSON is bounded)
_HOME = ""  # the working directory (a copy of the learner's files): %%writefile writes only here


class _FakeIPython:
    """Enough of get_ipython() for transformed magics: shell escapes and most magics do
    nothing; a cell magic that runs its body runs it, %%writefile writes in the working
    directory and %run runs one of the learner's own scripts, as Jupyter would."""

    def __init__(self, namespace):
        self.user_ns = namespace

    def run_line_magic(self, name, line, *args, **kwargs):
        if name == "run":
            _run_script(line, self.user_ns)
        return None

    def run_cell_magic(self, name, line, cell):
        from course.sandbox.cells import RUN_CELL_MAGICS, to_python  # a notebook's are unwrapped already

        if name == "writefile":
            _write_file(line, cell)
        elif name in RUN_CELL_MAGICS:
            run_cell("magic", to_python(cell), self.user_ns)
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
    if value is None or type(value) in (bool, int, float, str):
        return value
    for plain in (bool, int, float, str):  # subclasses (numpy.float64, enums) as the built-in value
        if isinstance(value, plain):
            return plain(value)
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
    kind, message = type(err).__name__, str(err)
    builtin = next((c.__name__ for c in type(err).__mro__ if getattr(builtins, c.__name__, None) is c), "Exception")
    # TorchScript turns what a scripted function raises into torch.jit.Error ending in
    # "builtins.ValueError: <message>": report what the learner's code raised.
    scripted = re.search(r"\nbuiltins\.(\w+): (.*)\Z", message, re.S) if isinstance(err, torch.jit.Error) else None
    if scripted and isinstance(getattr(builtins, scripted[1], None), type) \
            and issubclass(getattr(builtins, scripted[1]), Exception):
        kind = builtin = scripted[1]
        message = scripted[2].strip()
    return {"ok": False, "error": {"type": kind, "builtin": builtin, "message": message[:MESSAGE_CHARS],
                                   "traceback": learner_traceback(err)[:MESSAGE_CHARS]}}


def _tensor_args(args, kwargs):
    labelled = [(f"argument {i + 1}", a) for i, a in enumerate(args)] + [(f"argument '{k}'", v) for k, v in kwargs.items()]
    return [(label, t) for label, t in labelled if isinstance(t, torch.Tensor) and t.device.type != "meta"]


_NAMESPACE: dict = {}


_FUTURE_FLAGS = 0  # `from __future__ import ...` of a cell holds for the later cells, as in IPython
_ALL_FUTURE_FLAGS = sum(getattr(__future__, name).compiler_flag for name in __future__.all_feature_names)


def run_cell(label: str, code: str, namespace: dict | None = None):
    global _FUTURE_FLAGS
    filename = f"{CELL_PREFIX}{label}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    compiled = compile(code, filename, "exec", _FUTURE_FLAGS, True)
    _FUTURE_FLAGS |= compiled.co_flags & _ALL_FUTURE_FLAGS
    exec(compiled, _NAMESPACE if namespace is None else namespace)


def _inside_home(name: str) -> str:
    path = os.path.realpath(os.path.expanduser(name))
    if os.path.commonpath([path, _HOME]) != _HOME:
        raise PermissionError(f"{name} is outside the working directory")
    return path


def _write_file(line: str, cell: str) -> None:
    """%%writefile [-a] NAME: a helper module (or data) a later cell can use."""
    args = shlex.split(line)
    names = [a for a in args if not a.startswith("-")]
    if names:
        with open(_inside_home(names[0]), "a" if {"-a", "--append"} & set(args) else "w", encoding="utf-8") as f:
            f.write(cell)
        importlib.invalidate_caches()


def _run_script(line: str, namespace: dict) -> None:
    """%run [-i] SCRIPT.py [ARGS]: run as __main__ (its names then join the notebook's), or
    with -i among the notebook's names; other forms of %run are not run."""
    args = shlex.split(line)
    script = next((a for a in args if not a.startswith("-")), "")
    if not script.endswith(".py"):
        return
    path = _inside_home(script)
    with open(path, "rb") as f:
        code = importlib.util.decode_source(f.read())
    own = "-i" not in args[:args.index(script)]
    scope = {"__name__": "__main__", "__file__": path, "__builtins__": builtins} if own else namespace
    sys.argv = args[args.index(script):]
    run_cell(script, code, scope)
    if own:
        namespace.update({k: v for k, v in scope.items() if not k.startswith("__")})


def _enter(module: dict | None) -> None:
    """Run the code as Python or Jupyter would. A .py is the module an import of it makes:
    named after its file (so `if __name__ == "__main__":` blocks do not run), with `__file__`;
    a notebook is `__main__`. Either is in sys.modules (dataclasses, pickle and
    typing.get_type_hints look there), and the file's folder in the working copy of the
    learner's files is the working directory and first on sys.path (helper modules, data)."""
    global _HOME, _NAMESPACE
    _HOME = os.getcwd()
    module = module or {"notebook": True}
    path = os.path.join(_HOME, *module["file"].split("/")) if module.get("file") else ""
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "__main__" if module.get("notebook") else stem if stem.isidentifier() and stem not in sys.modules \
        else "submission"
    namespace = types.ModuleType(name)
    if not module.get("notebook"):
        namespace.__file__ = path
    namespace.__builtins__ = builtins
    sys.modules[name] = namespace
    _NAMESPACE = namespace.__dict__
    if path:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        os.chdir(folder)
        sys.path.insert(0, folder)
        sys.argv = [path]


SIGNATURE_PARAMETERS = 64  # sent per signature (course.grading.conventions.signatures reads no more)


def _parameters(function, skip: int = 0):
    """[[name, kind, has a default], ...] of `function`'s parameters (after the first `skip`); None
    if Python cannot tell."""
    try:
        parameters = list(inspect.signature(function).parameters.values())[skip:]
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name.lower(), p.default is not p.empty] for p in parameters[:SIGNATURE_PARAMETERS]]


def _signature(value) -> dict:
    """What the grader asks of a learner's name to choose a convention (never trusted there)."""
    if isinstance(value, type):
        forward = getattr(value, "forward", None)
        return {"kind": "class", "parameters": _parameters(value),
                "forward": _parameters(forward, 1) if inspect.isfunction(forward) else None}
    return {"kind": "function" if callable(value) else "value",
            "parameters": _parameters(value) if callable(value) else None}


def handle(message: dict, objects: Objects):
    op = message["op"]
    if op == "exec":
        run_cell(message["label"], message["code"])
        return None
    if op == "defined":
        return {name: ("class" if isinstance(_NAMESPACE[name], type) else "callable" if callable(_NAMESPACE[name])
                       else "value") for name in message["names"] if name in _NAMESPACE}
    if op == "signatures":
        return {name: _signature(_NAMESPACE[name]) for name in message["names"] if name in _NAMESPACE}
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
        grads = {name: p.grad for name, p in target.named_parameters()}
        weight = getattr(target, "weight", None)  # also when it is a property over an inner parameter
        if isinstance(weight, torch.nn.Parameter):
            grads["weight"] = weight.grad
        return {name: (None if g is None else g.detach().clone()) for name, g in grads.items()}
    raise ValueError(f"unknown request {op!r}")


_IN_SNAPSHOT = False  # this process is a snapshot: a copy forked for one grading, ended by "release"


def _snapshot() -> str:
    """Fork a copy of this process to answer the grader's next requests on the same channel
    (course.sandbox.learner_process.LearnerProcess.snapshot): the copy answers "snapshot"; this process
    waits until the copy has ended (released, crashed or killed), then answers "resumed", in the
    state it was in before, whatever the copy did meanwhile."""
    global _IN_SNAPSHOT
    pid = os.fork()
    if pid == 0:
        _IN_SNAPSHOT = True
        try:  # a process group of its own: what it starts is ended with it
            os.setpgid(0, 0)
        except OSError:
            pass
        try:  # a copy left behind by its original (killed) must not go on
            from course.sandbox import isolation

            if isolation.LINUX:
                isolation.prctl(isolation.PR_SET_PDEATHSIG, 9)
        except Exception:  # noqa: BLE001 - the grader kills the whole tree anyway
            pass
        return "snapshot"
    while True:
        try:
            os.waitpid(pid, 0)
            break
        except ChildProcessError:
            break
    try:  # processes the copy started and left behind (this process is their subreaper)
        os.killpg(pid, 9)
    except OSError:
        return "resumed"
    import time

    until = time.monotonic() + 0.5
    while time.monotonic() < until:
        try:
            if os.waitpid(-pid, os.WNOHANG) == (0, 0):
                time.sleep(0.005)
        except ChildProcessError:
            break
    return "resumed"


def serve(sock: socket.socket, module: dict | None = None) -> None:
    objects = Objects()
    _enter(module)
    builtins.get_ipython = lambda: _FakeIPython(_NAMESPACE)  # notebooks call it after transformation
    builtins.display = lambda *values, **options: None  # a built-in in Jupyter: nothing to show here
    while True:
        try:
            message = protocol.recv(sock, trusted=True)  # the grader's
        except protocol.ChannelClosed:
            return
        seq = message.get("seq") if isinstance(message, dict) else None
        op = message.get("op") if isinstance(message, dict) else None
        if op == "release" and _IN_SNAPSHOT:
            os._exit(0)  # the original, waiting in _snapshot, answers for it
        if op == "snapshot" and not _IN_SNAPSHOT:
            try:
                reply = {"ok": True, "value": _snapshot()}
            except BaseException as err:  # noqa: BLE001 - e.g. os.fork patched by the learner: no snapshot
                reply = error_payload(err)
            protocol.send(sock, {**reply, "seq": seq})
            continue
        try:
            reply = {"ok": True, "value": handle(message, objects)}
        except BaseException as err:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from learner code too
            reply = error_payload(err)
        reply["seq"] = seq
        try:
            protocol.send(sock, reply)
        except Exception as err:  # noqa: BLE001 - the value could not be copied out
            protocol.send(sock, {**error_payload(TypeError(f"the returned value could not be copied: {err}")), "seq": seq})

