# section: rope; breaks: rope.rope_matrix
# A graded function that answers its own call with a hand-made reply whose JSON costs the grader
# to decode (tests/test_isolation.py puts one kind in place of __PAYLOAD__): ints chosen to share a
# hash, as a set or as dict keys (60,000 or 30,000: minutes to put in one); a JSON head of 6 MB (about
# 50 times that in memory once parsed); arrays nested 100,000 deep; an integer of 4,000 digits.
# Each is refused as it is decoded, within milliseconds; the process is replaced.
import os as _os
import socket as _socket
import struct as _struct
import sys as _sys

_solution_rope_matrix = rope_matrix
_P = _sys.hash_info.modulus  # hash(k * _P) == 0 for every int k
_PAYLOADS = {
    "colliding_set": lambda: '{"s": [' + ",".join(str(k * _P) for k in range(1, 60_001)) + "]}",
    "colliding_dict": lambda: '{"d": [' + ",".join(f"[{k * _P}, 0]" for k in range(1, 30_001)) + "]}",
    "huge_head": lambda: "[" + ",".join(["[]"] * 2_000_000) + "]",
    "deep": lambda: "[" * 100_000 + "]" * 100_000,
    "huge_int": lambda: "9" * 4_000,
}


def rope_matrix(position, d, base=10000.0, interleaved=False):
    seq, frame = 1, _sys._getframe(1)
    while frame is not None:  # the request being answered
        if isinstance(frame.f_locals.get("message"), dict) and "seq" in frame.f_locals["message"]:
            seq = frame.f_locals["message"]["seq"]
            break
        frame = frame.f_back
    result = _PAYLOADS["__PAYLOAD__"]()
    head = ('{"v": {"d": [["ok", true], ["value", {"d": [["result", %s], ["after", []]]}], ["seq", %d]]}, "st": []}'
            % (result, seq)).encode()
    body = _struct.pack(">I", len(head)) + head
    _socket.socket(fileno=_os.dup(3)).sendall(_struct.pack(">Q", len(body)) + body)
    return _solution_rope_matrix(position, d, base, interleaved)
