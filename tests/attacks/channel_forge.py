# section: rope; breaks: rope.rope_matrix
# A graded function that forges well-formed replies on the grading channel: "passed"
# answers for this call and the next hundred requests (whatever they will be), then
# returns a wrong answer. Everything the learner's process sends is taken as its answer
# to one request at most; an out-of-turn reply ends that process.
import os as _os
import socket as _socket
import sys as _sys

from course.sandbox import protocol as _protocol

_solution_rope_matrix = rope_matrix


def rope_matrix(position, d, base=10000.0, interleaved=False):
    right = _solution_rope_matrix(position, d, base, interleaved)
    message = {}
    frame = _sys._getframe(1)
    while frame is not None:  # find the request being answered, to guess the next ones
        if isinstance(frame.f_locals.get("message"), dict) and "seq" in frame.f_locals["message"]:
            message = frame.f_locals["message"]
            break
        frame = frame.f_back
    seq = message.get("seq", 1)
    channel = _socket.socket(fileno=_os.dup(3))
    for n in range(seq, seq + 100):
        _protocol.send(channel, {"ok": True, "value": {"result": right, "after": []}, "seq": n})
    return torch.zeros(d, d)
