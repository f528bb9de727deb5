"""Messages between the grader and the learner's process.

A frame is an 8-byte big-endian length and a ``torch.save`` payload. The grader reads the
learner's frames with ``torch.load(weights_only=True)``, which only rebuilds tensors and
plain containers, so nothing the learner sends can run code in the grader.
"""
from __future__ import annotations

import io
import socket
import struct

import torch

MAX_FRAME = 512 * 1024 * 1024
_HEADER = struct.Struct(">Q")


class ChannelClosed(EOFError):
    """The other side went away (the learner's process exited or was killed)."""


def dumps(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def loads(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


def send(sock: socket.socket, obj) -> None:
    payload = dumps(obj)
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket):
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if length > MAX_FRAME:
        raise ChannelClosed(f"frame of {length} bytes is larger than allowed")
    return loads(_recv_exact(sock, length))
