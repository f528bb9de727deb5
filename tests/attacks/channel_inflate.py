# section: rope; breaks: rope.rope_matrix
# A graded function that answers its own call with a hand-made reply: a tensor whose shape and
# strides make 8 bytes stand for a trillion elements (a stride-0 view), hoping the grader
# builds it and runs out of memory copying or comparing it. The tensors of a reply the grader
# reads stand for at most 128 MB in all, whatever their strides.
import json as _json
import os as _os
import socket as _socket
import struct as _struct
import sys as _sys

_solution_rope_matrix = rope_matrix


def rope_matrix(position, d, base=10000.0, interleaved=False):
    seq, frame = 1, _sys._getframe(1)
    while frame is not None:  # the request being answered
        if isinstance(frame.f_locals.get("message"), dict) and "seq" in frame.f_locals["message"]:
            seq = frame.f_locals["message"]["seq"]
            break
        frame = frame.f_back
    huge = {"T": ["float64", [10**6, 10**6], [0, 0], 0, "cpu", False, 0, False]}
    reply = {"d": [["ok", True], ["value", {"d": [["result", huge], ["after", []]]}], ["seq", seq]]}
    head = _json.dumps({"v": reply, "st": [[0, 8]]}).encode()
    body = _struct.pack(">I", len(head)) + head + bytes(8)
    _socket.socket(fileno=_os.dup(3)).sendall(_struct.pack(">Q", len(body)) + body)
    return _solution_rope_matrix(position, d, base, interleaved)
