"""The grading channel's messages (course.sandbox.protocol): every value the grader and the
learner's process exchange comes back as torch.save/torch.load would give it, and what a
learner's process sends builds nothing but plain values and tensors inside the bytes sent."""
import io
import json
import socket
import struct
import sys
from collections import OrderedDict

import pytest
import torch

from course.sandbox import protocol

X = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
_MODULUS = sys.hash_info.modulus  # hash(n) == hash(n + k * _MODULUS) for ints


def _values():
    return {
        "slice": X[:, 1:, ::2],
        "transposed": X.transpose(0, 2),
        "expanded": torch.tensor([1.0, 2.0]).expand(3, 2),
        "scalar": torch.tensor(-0.0),
        "nan": torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64),
        "bf16": torch.linspace(-3, 3, 7, dtype=torch.bfloat16),
        "half": torch.linspace(-3, 3, 7, dtype=torch.float16),
        "complex": torch.polar(torch.ones(3, dtype=torch.float64), torch.tensor([0.1, 1.0, 2.0], dtype=torch.float64)),
        "conj": torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64).conj(),
        "neg": torch.tensor([1 + 2j], dtype=torch.complex128).conj().imag,
        "empty": torch.zeros(0, 5),
        "bool": torch.tensor([[True, False], [False, True]]),
        "ints": [torch.tensor([-1, 2**40]), torch.tensor([7], dtype=torch.int8), torch.tensor([200], dtype=torch.uint8),
                 torch.tensor([3], dtype=torch.int16), torch.tensor([-3], dtype=torch.int32)],
        "grad": torch.ones(2, requires_grad=True),
        "parameter": torch.nn.Parameter(torch.ones(2, 3)),
        "ordered": OrderedDict([("b", torch.zeros(1)), ("a", 1)]),
        "nested": (1, [2, (3.5, None, True)], {"a": -0.0, 2: "b", (1, 2): [b"\x00x"]}),
        "dtypes": (torch.float64, torch.bfloat16, torch.bool),
        "size": torch.Size([2, 3]),
        "device": torch.device("cpu"),
        "numbers": (10**30, float("inf"), 1e-310, complex(1.5, -2.0)),
        "text": "ünïcode \ud800 and a lone surrogate",
        "sets": ({1, 2, -1, -2}, frozenset({"x"})),  # (hash(-1) == hash(-2))
        "buffers": (b"\x00\xff", bytearray(b"xy")),
    }


def _same(a, b, path="value"):
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape, a.stride(), a.requires_grad) == (b.dtype, b.shape, b.stride(), b.requires_grad), path
        if not any(t.is_conj() or t.is_neg() for t in (a, b)):  # (lazy conjugation arrives resolved, as from torch.load)
            assert a.storage_offset() == b.storage_offset() and b.device.type == "cpu", path
        raw = [torch.empty(t.shape, dtype=t.dtype).copy_(t).reshape(-1).view(torch.uint8) for t in (a, b)]
        assert torch.equal(*raw), f"{path}: {a} vs {b}"
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, float) and a != a:
        assert b != b, path
    else:
        assert a == b and str(a) == str(b), f"{path}: {a!r} vs {b!r}"


def _torch_round_trip(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


@pytest.mark.parametrize("name", list(_values()))
def test_values_come_back_as_torch_save_and_load_give_them(name):
    value = _values()[name]
    if name not in ("text", "sets", "buffers"):  # (torch's safe loader refuses these; ours keeps them)
        _same(_torch_round_trip(value), value)
    _same(protocol.loads(protocol.dumps(value), trusted=True), value)
    _same(protocol.loads(protocol.dumps(value)), value)


@pytest.mark.parametrize("trusted", [True, False])
def test_tensors_sharing_memory_still_share_it(trusted):
    """As torch.load gives them; a learner's process whose `clone` was patched sends its results so."""
    a, b = protocol.loads(protocol.dumps((X, X[0])), trusted=trusted)
    a[0, 0, 0] = 99.0
    assert b[0, 0].item() == 99.0


@pytest.mark.parametrize("value", [torch.ones(3).to_sparse(), torch.ones(2, device="meta"), object(), {1: {2: object}}])
def test_values_of_other_kinds_are_refused_when_sent(value):
    with pytest.raises(TypeError, match="cannot send"):
        protocol.dumps(value)


def _frame(tree, storages=(), data=b"") -> bytes:
    head = json.dumps({"v": tree, "st": [list(s) for s in storages]}).encode()
    return struct.pack(">I", len(head)) + head + data


def _tensor(size, stride, offset=0, dtype="float32", storage=0, device="cpu"):
    return {"T": [dtype, size, stride, offset, device, False, storage, False]}


@pytest.mark.parametrize("frame,why", ids=lambda v: v if isinstance(v, str) else "", argvalues=[
    (_frame(_tensor([10**6, 10**6], [0, 0]), [(0, 8)], bytes(8)), "more than 134217728 bytes"),  # a stride-0 view
    (_frame({"t": [_tensor([2**22], [0], dtype="float64")] * 5}, [(0, 8)], bytes(8)), "more than 134217728 bytes"),
    (_frame({"t": [_tensor([0], [1], storage=i) for i in range(4)]}, [(0, 8)] * 4, bytes(8)), "more than once"),
    (_frame({"t": [{"b": [0, 8]}] * 4}, (), bytes(8)), "more than once"),
    (_frame(_tensor([4], [1]), [(0, 8)], bytes(8)), "beyond the bytes"),
    (_frame(_tensor([2], [1], offset=1), [(0, 8)], bytes(8)), "beyond the bytes"),
    (_frame(_tensor([1], [1]), [(4, 4)], bytes(4)), "beyond the message"),
    (_frame(_tensor([1], [1]), [(0, 4)], bytes(4))[:-1], "beyond the message"),
    (_frame(_tensor([1], [1], dtype="object"), [(0, 8)], bytes(8)), "unknown dtype"),
    (_frame(_tensor([1], [-1]), [(0, 8)], bytes(8)), "malformed"),
    (_frame(_tensor([True], [1]), [(0, 8)], bytes(8)), "malformed"),
    (_frame(_tensor([1], [1], storage=3), [(0, 8)], bytes(8)), "unknown storage"),
    (_frame(_tensor([1], [1], device="tpu"), [(0, 8)], bytes(8)), "unknown device"),
    (_frame({"os.system": "echo hacked"}), "unknown kind"),
    (_frame({"t": [], "d": []}), "malformed"),
    (_frame({"d": [[1]]}), "malformed"),
    (_frame({"y": "float128"}), "unknown kind"),
    (_frame(json.loads("[" * 150 + "]" * 150)), "too deeply"),
    # Decoding is bounded: values chosen to share a hash (each would be compared with all the others),
    # a JSON head or an integer too large to be a result, more values than a result holds.
    (_frame({"s": [k * _MODULUS for k in range(1, 40)]}), "share a hash"),
    (_frame({"f": [{"t": [k * _MODULUS]} for k in range(1, 40)]}), "share a hash"),
    (_frame({"d": [[k * _MODULUS, k] for k in range(1, 40)]}), "share a hash"),
    (_frame(-10**protocol.MAX_INT_DIGITS), "digits"),
    (_frame([[0.5]] * (protocol.MAX_NODES // 2 + 1)), "values"),
    (_frame("x" * protocol.MAX_HEAD), "head of"),
])
def test_what_a_learner_sends_is_refused_unless_plain(frame, why):
    with pytest.raises(ValueError, match=why):
        protocol.loads(frame)


def test_the_grader_sends_what_a_learner_may_not():
    """The limits on decoding are for what a learner's process sends; the grader's own values pass."""
    values = [10**protocol.MAX_INT_DIGITS, {k * _MODULUS for k in range(1, 40)}, [0] * (protocol.MAX_NODES + 1)]
    for value in values:
        assert protocol.loads(protocol.dumps(value), trusted=True) == value


def test_decoding_stops_at_the_calls_deadline():
    frame = _frame([[1, 2.5, "x"]] * 5000)
    assert len(protocol.loads(frame, deadline=None)) == 5000
    with pytest.raises(socket.timeout):
        protocol.loads(frame, deadline=0.0)  # (time.monotonic() is past it)


def test_views_of_a_few_bytes_are_read_up_to_the_frame_limit():
    frame = _frame({"t": [_tensor([2**22], [0], dtype="float64")] * 3}, [(0, 8)], struct.pack("<d", 2.5))
    views = protocol.loads(frame)  # 96 MB stood for, 8 bytes held
    assert [v.shape for v in views] == [(2**22,)] * 3 and views[2][-1].item() == 2.5


def test_a_tensor_sent_by_a_learner_owns_its_bytes():
    frame = _frame(_tensor([2], [1]), [(0, 8)], struct.pack("<2f", 1.5, -2.0))
    got = protocol.loads(bytearray(frame))
    assert got.tolist() == [1.5, -2.0] and got.data_ptr() % 16 == 0  # aligned, and a copy:
    assert got.untyped_storage().nbytes() == 8


def test_a_value_the_grader_cannot_send_is_the_graders_error_not_the_learners():
    from course.sandbox.learner_process import LearnerProcess

    sandbox = LearnerProcess([("1", "def echo(x):\n    return x\n")])
    try:
        sandbox.start()
        call = {"op": "call", "target": {"__global__": "echo"}, "kwargs": {}}
        with pytest.raises(TypeError, match="cannot send a value of type builtins.object"):
            sandbox.request({**call, "args": [object()]})
        generation = sandbox.generation
        assert sandbox.request({**call, "args": [X]})["result"].equal(X)
        assert sandbox.generation == generation  # the learner's process was not blamed and replaced
    finally:
        sandbox.close()


def test_a_default_device_set_by_the_learners_code_changes_nothing_on_the_channel():
    """torch.set_default_device("cuda") in a cell: the messages are still built on the CPU ("meta"
    stands for a GPU here: any tensor made on it by mistake would fail)."""
    with torch.device("meta"):
        value = protocol.loads(protocol.dumps({"x": X}), trusted=True)
        again = protocol.loads(protocol.dumps(value))
    _same(again, {"x": X})


def test_a_long_error_message_is_the_learners_error_not_a_refused_reply():
    """A message longer than the JSON of a reply may be is cut short in the learner's process."""
    from course.sandbox.learner_process import LearnerProcess

    sandbox = LearnerProcess([("1", f"raise ValueError('x' * {protocol.MAX_HEAD})")])
    try:
        sandbox.start()
        (outcome,) = sandbox.outcomes
        assert outcome.error.startswith("ValueError: xxx") and not outcome.fatal, outcome
    finally:
        sandbox.close()
