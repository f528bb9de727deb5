"""Messages between the grader and the learner's process.

A frame is an 8-byte big-endian length, then the message: a 4-byte length, a JSON text and
the bytes of the tensors' storages. The JSON holds plain values as themselves and everything
else as a one-key object naming its kind (tuple, dict, tensor, dtype, ...), so reading a frame
builds nothing but those kinds: nothing the learner sends can run code in the grader. What the
learner sends is checked as it is read (``loads``): every tensor lies inside bytes that were
sent, no more bytes are copied out of a message than it holds, and its tensors stand for at most
MAX_FRAME bytes in all (so a small message cannot become a value too large to hold or compare,
through many references to the same bytes or stride-0 views). Decoding it is bounded too: its
JSON head holds at most MAX_HEAD bytes (parsed JSON takes up to ~50 times its size in memory),
MAX_NODES values, integers of at most MAX_INT_DIGITS digits, and no set or dict whose keys were
chosen to share a hash (building one of n such keys takes n*n/2 comparisons); the call's deadline
runs while it is decoded. Tensors are always built on the CPU, whatever default device the
learner's code set. A frame larger than MAX_FRAME, or one that does not arrive completely before
the deadline (however slowly the learner drips bytes), ends the exchange.

(This replaced ``torch.save``/``torch.load(weights_only=True)``: the same values, a tenth of
the time, which each of the ~500 calls of a full grading paid on both sides.)
"""
from __future__ import annotations

import json
import math
import select
from collections import OrderedDict
import socket
import struct
import time

import numpy
import torch

MAX_FRAME = 128 * 1024 * 1024
_HEADER = struct.Struct(">Q")
_JSON_LENGTH = struct.Struct(">I")
MAX_DEPTH = 100
# Limits on what a learner's process sends, far above any result of the course (tensors travel as
# bytes, not JSON; a result is a few values and tensors) and low enough to decode in milliseconds.
MAX_HEAD = 4 * 1024 * 1024   # bytes of JSON: at most ~200 MB once parsed
MAX_NODES = 100_000          # values (a tensor is one)
MAX_INT_DIGITS = 64          # (a uint64 has 20)
MAX_SAME_HASH = 8            # keys of one set or dict sharing a hash (hash(-1) == hash(-2): some do)
_CHECK_DEADLINE_EVERY = 1024  # values decoded

DTYPES = {name: getattr(torch, name) for name in (
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128", "bool",
    "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64") if hasattr(torch, name)}
_DEVICES = ("cpu", "cuda", "mps")


def _known_device(text: str) -> bool:
    return text.split(":")[0] in _DEVICES


class ChannelClosed(EOFError):
    """The other side went away (the learner's process exited or was killed)."""


class FrameTooLarge(ChannelClosed):
    """A frame announced more than MAX_FRAME bytes (a huge value, or garbage on the channel)."""


class _Writer:
    """Turns a value into the JSON tree of ``dumps`` and the buffers that follow it."""

    def __init__(self):
        self.blobs: list = []  # buffers, in order
        self.size = 0
        self.storages: dict[tuple[int, int], int] = {}  # (address, bytes) -> index: shared storages stay shared
        self.spans: list[list[int]] = []  # [offset, length] of each storage

    def storage(self, tensor: torch.Tensor) -> int:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in self.storages:
            data = torch.empty(0, dtype=torch.uint8, device="cpu").set_(storage).numpy()
            self.storages[key] = len(self.spans)
            self.spans.append([self.size, data.nbytes])
            self.blobs.append(memoryview(data))
            self.size += data.nbytes
        return self.storages[key]

    def tensor(self, t: torch.Tensor) -> dict:
        if t.layout != torch.strided or t.is_quantized or t.dtype not in DTYPES.values() \
                or t.device.type not in _DEVICES or type(t) not in (torch.Tensor, torch.nn.Parameter):
            raise TypeError(f"cannot send a {type(t).__name__} of {t.dtype} on {t.device} ({t.layout})")
        device = str(t.device)
        data = t.detach().resolve_conj().resolve_neg()  # (lazy conjugation: the storage holds the unconjugated values)
        if data.device.type != "cpu":
            data = data.cpu()
        return {"T": [str(t.dtype).removeprefix("torch."), list(data.shape), list(data.stride()),
                      data.storage_offset(), device, t.requires_grad, self.storage(data),
                      type(t) is torch.nn.Parameter]}

    def value(self, v, depth: int = 0):
        kind = type(v)
        if v is None or kind in (bool, int, float, str):
            return v
        if depth > MAX_DEPTH:
            raise ValueError("value nested too deeply to send")
        if kind is list:
            return [self.value(x, depth + 1) for x in v]
        if kind is tuple:
            return {"t": [self.value(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            return {"o" if kind is OrderedDict else "d":
                    [[self.value(k, depth + 1), self.value(x, depth + 1)] for k, x in v.items()]}
        if isinstance(v, torch.Tensor):
            return self.tensor(v)
        if kind is torch.dtype:
            if v not in DTYPES.values():
                raise TypeError(f"cannot send the dtype {v}")
            return {"y": str(v).removeprefix("torch.")}
        if kind is torch.Size:
            return {"S": list(v)}
        if kind is torch.device:
            return {"D": str(v)}
        if kind is complex:
            return {"c": [v.real, v.imag]}
        if kind in (set, frozenset):
            return {"s" if kind is set else "f": [self.value(x, depth + 1) for x in v]}
        if kind in (bytes, bytearray):
            self.blobs.append(memoryview(v))
            self.size += len(v)
            return {"b" if kind is bytes else "B": [self.size - len(v), len(v)]}
        for plain in (bool, int, float, str, list, tuple):  # subclasses (enums, named tuples) as the built-in value
            if isinstance(v, plain):
                return self.value(plain(v), depth)
        raise TypeError(f"cannot send a value of type {kind.__module__}.{kind.__qualname__}")


def dumps(obj) -> bytes:
    writer = _Writer()
    tree = writer.value(obj)
    text = json.dumps({"v": tree, "st": writer.spans}, separators=(",", ":")).encode()
    return b"".join([_JSON_LENGTH.pack(len(text)), text, *writer.blobs])


class _Reader:
    """Rebuilds a value from a message, checking every part of it as it goes."""

    def __init__(self, data, trusted: bool, deadline: float | None):
        (n,) = _JSON_LENGTH.unpack_from(data)
        if n > MAX_HEAD and not trusted:
            raise ValueError(f"a JSON head of {n} bytes (at most {MAX_HEAD})")
        _left(deadline)
        head = json.loads(bytes(data[_JSON_LENGTH.size:_JSON_LENGTH.size + n]),
                          parse_int=int if trusted else _bounded_int)
        if type(head) is not dict or type(head.get("st")) is not list:
            raise ValueError("not a message")
        self.data, self.base, self.trusted, self.deadline = data, _JSON_LENGTH.size + n, trusted, deadline
        self.head = head
        self.nodes = 0  # values decoded so far
        self.storages: dict[int, torch.Tensor] = {}
        self.claimed = 0  # bytes the tensors read so far stand for
        self.copied = 0  # bytes copied out of the message so far

    def blob(self, span) -> memoryview:
        """The bytes of `span`, to be copied: untrusted, no more bytes in all than the message holds
        (each span is sent once; many references to one large span would multiply it)."""
        if type(span) is not list or len(span) != 2 or any(type(x) is not int or x < 0 for x in span):
            raise ValueError("a malformed span")
        start, length = self.base + span[0], span[1]
        if start + length > len(self.data):
            raise ValueError("a span beyond the message")
        self.copied += length
        if self.copied > len(self.data) - self.base and not self.trusted:
            raise ValueError("bytes read more than once")
        return memoryview(self.data)[start:start + length]

    def storage(self, index) -> torch.Tensor:
        if type(index) is not int or not 0 <= index < len(self.head["st"]):
            raise ValueError("an unknown storage")
        if index not in self.storages:
            data = self.blob(self.head["st"][index])
            copy = torch.empty(len(data), dtype=torch.uint8, device="cpu")  # aligned, writable, owned
            copy.numpy()[:] = numpy.frombuffer(data, dtype=numpy.uint8)
            self.storages[index] = copy
        return self.storages[index]

    def tensor(self, fields) -> torch.Tensor:
        if type(fields) is not list or len(fields) != 8:
            raise ValueError("a malformed tensor")
        dtype_name, size, stride, offset, device, requires_grad, index, parameter = fields
        dtype = DTYPES.get(dtype_name) if type(dtype_name) is str else None
        if dtype is None:
            raise ValueError(f"a tensor of unknown dtype {str(dtype_name)[:40]!r}")
        if (type(size) is not list or type(stride) is not list or len(size) != len(stride) or len(size) > 64
                or any(type(x) is not int or x < 0 for x in [*size, *stride, offset])
                or type(requires_grad) is not bool or type(parameter) is not bool or type(device) is not str):
            raise ValueError("a malformed tensor")
        storage = self.storage(index)
        item = dtype.itemsize
        numel = math.prod(size)
        if numel and (offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1) * item > storage.numel():
            raise ValueError("a tensor reaching beyond the bytes sent for it")
        self.claimed += numel * item
        if self.claimed > MAX_FRAME and not self.trusted:
            raise ValueError(f"tensors standing for more than {MAX_FRAME} bytes in all")
        t = torch.empty(0, dtype=dtype, device="cpu").set_(storage.untyped_storage(), offset, size, stride)
        if device != "cpu":
            if not _known_device(device):
                raise ValueError(f"a tensor on an unknown device {device[:40]!r}")
            t = t.to(torch.device(device))
        if parameter:
            return torch.nn.Parameter(t, requires_grad=requires_grad)
        return t.requires_grad_(requires_grad) if requires_grad else t

    def keys(self, keys: list) -> list:
        """`keys`, unless (untrusted) more than MAX_SAME_HASH of them share a hash."""
        if not self.trusted:
            counts: dict[int, int] = {}  # (hashes of hashes collide at most a few times: ints below 2**64)
            for key in keys:
                h = hash(key)  # (TypeError if unhashable, as set() or dict() would raise)
                counts[h] = counts.get(h, 0) + 1
                if counts[h] > MAX_SAME_HASH:
                    raise ValueError(f"more than {MAX_SAME_HASH} keys of a set or dict share a hash")
        return keys

    def value(self, v, depth: int = 0):
        self.nodes += 1
        if self.nodes > MAX_NODES and not self.trusted:
            raise ValueError(f"more than {MAX_NODES} values")
        if self.nodes % _CHECK_DEADLINE_EVERY == 0:
            _left(self.deadline)
        if v is None or type(v) in (bool, int, float, str):
            return v
        if depth > MAX_DEPTH:
            raise ValueError("value nested too deeply")
        if type(v) is list:
            return [self.value(x, depth + 1) for x in v]
        if type(v) is not dict or len(v) != 1:
            raise ValueError("a malformed value")
        ((tag, body),) = v.items()
        if tag in ("t", "s", "f", "d", "o") and type(body) is not list:
            raise ValueError("a malformed value")
        if tag == "t":
            return tuple(self.value(x, depth + 1) for x in body)
        if tag in ("d", "o"):
            if any(type(pair) is not list or len(pair) != 2 for pair in body):
                raise ValueError("a malformed dict")
            pairs = [(self.value(k, depth + 1), self.value(x, depth + 1)) for k, x in body]
            self.keys([k for k, _ in pairs])
            return (dict if tag == "d" else OrderedDict)(pairs)
        if tag == "T":
            return self.tensor(body)
        if tag == "y" and type(body) is str and body in DTYPES:
            return DTYPES[body]
        if tag == "S" and type(body) is list and all(type(x) is int for x in body):
            return torch.Size(body)
        if tag == "D" and type(body) is str and _known_device(body):
            return torch.device(body)
        if tag == "c" and type(body) is list and len(body) == 2 and all(type(x) in (int, float) for x in body):
            return complex(*body)
        if tag in ("s", "f"):
            return (set if tag == "s" else frozenset)(self.keys([self.value(x, depth + 1) for x in body]))
        if tag in ("b", "B"):
            return (bytes if tag == "b" else bytearray)(self.blob(body))
        raise ValueError(f"a value of unknown kind {tag[:20]!r}")


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def loads(data, trusted: bool = False, deadline: float | None = None):
    """The message in `data`; socket.timeout once `deadline` (time.monotonic()) has passed. Untrusted
    (what a learner's process sends): no more bytes are copied out than it holds, its tensors stand
    for at most MAX_FRAME bytes in all, however few bytes they share (stride-0 views), and it is
    decoded within the bounds above."""
    reader = _Reader(data, trusted, deadline)
    return reader.value(reader.head.get("v"))


def _left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


def send(sock: socket.socket, obj, deadline: float | None = None) -> None:
    send_bytes(sock, dumps(obj), deadline)


def send_bytes(sock: socket.socket, payload: bytes, deadline: float | None = None) -> None:
    """Send a message made by ``dumps``."""
    if deadline is not None:
        sock.settimeout(_left(deadline))  # sendall's timeout bounds the whole send
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytearray:
    buffer, got = bytearray(n), 0
    view = memoryview(buffer)
    while got < n:
        if deadline is not None:
            sock.settimeout(_left(deadline))
        count = sock.recv_into(view[got:], min(n - got, 1 << 20))
        if not count:
            raise ChannelClosed("connection closed")
        got += count
    return buffer


def _peek(sock: socket.socket) -> bytes | None:
    """The next byte waiting on the socket, b"" if the other side closed it, None if neither."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return None
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def pending(sock: socket.socket) -> bool:
    """Whether more bytes wait on the socket (after a complete frame: someone wrote out of turn)."""
    return bool(_peek(sock))


def closed(sock: socket.socket) -> bool:
    """Whether the other side closed the socket (every process holding its end has ended)."""
    return _peek(sock) == b""


def recv(sock: socket.socket, deadline: float | None = None, trusted: bool = False):
    """The next frame; socket.timeout if it is not complete by `deadline` (time.monotonic())."""
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline))
    if length > MAX_FRAME:
        raise FrameTooLarge(f"a frame of {length} bytes is larger than allowed ({MAX_FRAME} bytes)")
    return loads(_recv_exact(sock, length, deadline), trusted, deadline)
