"""Messages between the grader and the learner's process.

A frame is an 8-byte big-endian length and a ``torch.save`` payload. The grader reads the
learner's frames with ``torch.load(weights_only=True)``, which only rebuilds tensors and
plain containers, so nothing the learner sends can run code in the grader. A frame
larger than MAX_FRAME, or one that does not arrive completely before the deadline
(however slowly the learner drips bytes), ends the exchange.
"""
from __future__ import annotations

import io
import select
import socket
import struct
import time

import torch

MAX_FRAME = 128 * 1024 * 1024
_HEADER = struct.Struct(">Q")


class ChannelClosed(EOFError):
    """The other side went away (the learner's process exited or was killed)."""


class FrameTooLarge(ChannelClosed):
    """A frame announced more than MAX_FRAME bytes (a huge value, or garbage on the channel)."""


def dumps(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def loads(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


def _left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


def send(sock: socket.socket, obj, deadline: float | None = None) -> None:
    payload = dumps(obj)
    if deadline is not None:
        sock.settimeout(_left(deadline))  # sendall's timeout bounds the whole send
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    chunks, remaining = [], n
    while remaining:
        if deadline is not None:
            sock.settimeout(_left(deadline))
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def pending(sock: socket.socket) -> bool:
    """Whether more bytes wait on the socket (after a complete frame: someone wrote out of turn)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError, OSError):
        return False


def recv(sock: socket.socket, deadline: float | None = None):
    """The next frame; socket.timeout if it is not complete by `deadline` (time.monotonic())."""
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline))
    if length > MAX_FRAME:
        raise FrameTooLarge(f"a frame of {length} bytes is larger than allowed ({MAX_FRAME} bytes)")
    return loads(_recv_exact(sock, length, deadline))
