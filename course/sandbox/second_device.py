"""Run a learner's function on a second device, in the learner's process.

Device checks ask: given inputs on some device, does the code return its results there,
and does it only ever combine tensors that live on one device? With a GPU (CUDA or MPS)
the check runs on it. Without one it runs on an *emulated* device: tensors that hold real
CPU values but report the device ``meta``, with CUDA's rules for mixing devices (a
non-scalar tensor on another device is an error, and so is reading a CPU tensor at device
indices; CPU scalars, CPU indices of a device tensor and copies between devices are allowed).
Unlike real ``meta`` tensors they have values, so correct code that reads them (``.item()``,
``.tolist()``, ``.cpu().numpy()``) works as on a GPU.
"""
from __future__ import annotations

import contextlib

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

EMULATED = torch.device("meta")
MIXING_ERROR = "Expected all tensors to be on the same device, but found at least two devices"
INDEXING_ERROR = "indices should be either on cpu or on the same device as the indexed tensor"
# What only a device mistake raises on the emulated device (as it would on a GPU).
DEVICE_MISTAKES = (MIXING_ERROR, INDEXING_ERROR, "to numpy. Use Tensor.cpu()")
# Ops that CUDA lets take CPU tensors beside device tensors (indices, copies between devices).
_MIXING_ALLOWED = {"aten::copy_", "aten::_to_copy", "aten::index", "aten::index_put_", "aten::index_put",
                   "aten::_index_put_impl_", "aten::_local_scalar_dense"}
_PUTS = {"aten::index_put_", "aten::index_put", "aten::_index_put_impl_"}


class Emulated(torch.Tensor):
    """Real CPU values (``inner``) that report the emulated device."""

    @staticmethod
    def __new__(cls, inner: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(
            cls, inner.shape, strides=inner.stride(), storage_offset=inner.storage_offset(), dtype=inner.dtype,
            device=EMULATED, requires_grad=inner.requires_grad)

    def __init__(self, inner: torch.Tensor):
        self.inner = inner

    def tolist(self):
        return self.inner.tolist()

    def numpy(self, *args, **kwargs):
        raise TypeError(f"can't convert {EMULATED.type} device type tensor to numpy. "
                        "Use Tensor.cpu() to copy the tensor to host memory first.")

    def __array__(self, *args, **kwargs):
        return self.numpy()

    def __repr__(self):
        return f"{self.inner!r} (on the emulated device)"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        with EmulatedDevice():
            return func(*args, **(kwargs or {}))


def _unwrap(value):
    return value.inner if isinstance(value, Emulated) else value


def _is_emulated(device) -> bool:
    return device is not None and torch.device(device) == EMULATED


class EmulatedDevice(TorchDispatchMode):
    """While active, every op on Emulated tensors runs on their CPU values and returns Emulated
    tensors; factories asked for the emulated device build them; mixing raises as on CUDA."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._dynamo.disable unless told not to; the
        # wrapper imports torch._dynamo (and sympy) on first use: 0.8 s of CPU in every learner
        # process. Learner processes never compile (TORCH_COMPILE_DISABLE), so there is nothing to skip.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        on_emulated = any(isinstance(t, Emulated) for t in tensors)
        elsewhere = [t for t in tensors if not isinstance(t, Emulated) and t.dim() > 0]
        if on_emulated and elsewhere and name not in _MIXING_ALLOWED:
            raise RuntimeError(f"{MIXING_ERROR}, {EMULATED.type} and {elsewhere[0].device.type}! (when calling {name})")
        if name == "aten::index" or name in _PUTS:
            _check_indexing(name, args)
        target = kwargs.get("device")
        if target is not None:
            kwargs = {**kwargs, "device": torch.device("cpu") if _is_emulated(target) else target}
        out = func(*tree_map(_unwrap, args), **tree_map(_unwrap, kwargs))
        if name == "aten::_local_scalar_dense":
            return out
        if name.endswith("_"):  # in place: the result is `self`, already changed through its values
            return args[0]
        if name == "aten::index" or name in _PUTS:  # the result is on the indexed tensor's device
            on_emulated = isinstance(args[0], Emulated)
        wrap = _is_emulated(target) if target is not None else on_emulated
        return tree_map(lambda t: Emulated(t) if wrap and isinstance(t, torch.Tensor) else t, out)


def _check_indexing(name: str, args: tuple) -> None:
    """CUDA's rules for indexing across devices: a device tensor may be read with CPU indices, a
    CPU tensor never read with device indices (written, it may be); values written must be on the
    written tensor's device, or scalars (torch's test_indexing: test_cpu_indices, test_invalid_device)."""
    indexed, here = args[0], isinstance(args[0], Emulated)
    if name == "aten::index" and not here and any(isinstance(i, Emulated) for i in args[1]):
        raise RuntimeError(f"{INDEXING_ERROR} ({indexed.device.type})")
    values = args[2] if len(args) > 2 else None
    if name in _PUTS and isinstance(values, torch.Tensor) and values.dim() > 0 and isinstance(values, Emulated) != here:
        raise RuntimeError(f"{MIXING_ERROR}, {_device_label(indexed)} and {_device_label(values)}! "
                           f"(when calling {name})")


class EmulatedConstructors(TorchFunctionMode):
    """``torch.tensor(data, device=...)`` and its kin build tensors below the dispatcher: asked
    for the emulated device, build them on the CPU and wrap them."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor, torch.asarray) and _is_emulated(kwargs.get("device")):
            return Emulated(func(*args, **{**kwargs, "device": "cpu"}))
        if func is torch.Tensor.new_tensor and isinstance(args[0], Emulated) and kwargs.get("device") is None:
            return Emulated(func(args[0].inner, *args[1:], **kwargs))
        return func(*args, **kwargs)


class EmulationLimit(RuntimeError):
    """The emulated device could not follow what the code did (not the code's fault)."""


@contextlib.contextmanager
def _autocast_follows_the_cpu():
    """Code that switches autocast off for its input's device (transformers' rotary code does)
    asks for autocast on the emulated device, which has none: it gets the CPU's."""
    originals = torch.autocast, torch.amp.autocast

    class autocast(originals[0]):  # noqa: N801 - stands in for torch.autocast
        def __init__(self, device_type, *args, **kwargs):
            super().__init__("cpu" if device_type == EMULATED.type else device_type, *args, **kwargs)

    torch.autocast = torch.amp.autocast = autocast
    try:
        yield
    finally:
        torch.autocast, torch.amp.autocast = originals


def real_second_device() -> torch.device | None:
    """A GPU this process can use, if any."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return None


def second_device() -> dict:
    """{"device": the type name the check will see, "emulated": whether it is the emulated one}."""
    device = real_second_device()
    return {"device": EMULATED.type if device is None else device.type, "emulated": device is None}


def learners_second_device() -> dict:
    """second_device() as the grader knows it for its learners' processes, never from their word
    (a process could claim the emulation, to have its errors skipped, or a GPU, to report results
    it never computed there): a GPU this process sees, unless Landlock keeps learners from its
    device files (``/dev/nvidia*``); otherwise the emulated device."""
    from course.sandbox.isolation import landlock_abi
    from course.sandbox.learner_process import LAYERS

    device = real_second_device()
    if device is None or (device.type == "cuda" and LAYERS["landlock"] and landlock_abi() > 0):
        return {"device": EMULATED.type, "emulated": True}
    return {"device": device.type, "emulated": False}


def _device_label(value) -> str:
    return EMULATED.type if isinstance(value, Emulated) else value.device.type


def _to_cpu(value):
    if isinstance(value, Emulated):
        return value.inner.detach().clone()
    if isinstance(value, torch.Tensor) and value.device == EMULATED:
        raise EmulationLimit("a result was built on the real 'meta' device, which the emulation could not intercept")
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return value


def _call_emulated(fn, args: tuple, kwargs: dict):
    move = lambda v: Emulated(v.detach().clone().requires_grad_(v.requires_grad)) \
        if isinstance(v, torch.Tensor) else v  # noqa: E731
    with _autocast_follows_the_cpu(), EmulatedConstructors(), EmulatedDevice():
        if isinstance(fn, torch.nn.Module):
            fn.to(EMULATED)
        return fn(*tree_map(move, args), **tree_map(move, kwargs))


def warm_up() -> None:
    """Pay the emulation's first-use cost (about 0.8 s of torch's dispatch machinery) once, in the
    fork server, instead of in every learner process. Never touches a GPU."""
    def typical(x, positions):
        inv = torch.tensor([1.0, 0.1], device=x.device)[positions.new_zeros(2)] * torch.tensor(1.0)
        angles = positions[:, None].float() * inv
        out = torch.cat([x[..., :2] * angles.cos(), x[..., 2:] * angles.sin()], -1).softmax(-1)
        return out.masked_fill(torch.ones_like(out, dtype=torch.bool).tril(), 0.0), int(positions.max())

    module = torch.nn.Embedding(4, 4)
    _call_emulated(typical, (torch.ones(3, 4), torch.arange(3)), {})
    _call_emulated(module, (torch.arange(3),), {})


def call_on_second_device(fn, args: tuple, kwargs: dict) -> dict:
    """Call ``fn`` with its tensor arguments (and ``fn`` itself, if it is a module) moved to the
    second device. Returns {"device", "emulated", "devices" (of each tensor in the result, in
    order), "result" (copied back to the CPU)}; exceptions propagate."""
    device = real_second_device()
    if device is None:
        out = _call_emulated(fn, args, kwargs)
    else:
        if isinstance(fn, torch.nn.Module):
            fn.to(device)
        moved = lambda v: v.to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
        out = fn(*tree_map(moved, args), **tree_map(moved, kwargs))
    devices = [_device_label(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    return {**second_device(), "devices": devices, "result": tree_map(_to_cpu, out)}
