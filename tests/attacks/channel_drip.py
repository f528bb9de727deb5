# section: rope; breaks: rope.rope_matrix
# A graded function that starts a reply on the grading channel and then drips one byte
# every half second, so that no single read ever waits long: the call's deadline must
# hold for the whole reply, not for each read.
import os as _os
import struct as _struct
import time as _time


def rope_matrix(position, d, base=10000.0, interleaved=False):
    _os.write(3, _struct.pack(">Q", 10_000))
    for _ in range(10_000):
        _os.write(3, b"x")
        _time.sleep(0.5)
