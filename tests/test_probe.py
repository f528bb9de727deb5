"""course.probe: every applicable probe passes on the library's tiny models and fails, by
name, on a variant broken on purpose; the CLI and a sandboxed file.py:factory target."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course import probe
from course.probe.report import FAIL, NA, PASS
from course.probe.targets import MissingExtra, hf_handle, patched

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "course/probe/example_model.py"
STRUCTURAL = ("shift", "cache", "padding", "rope_norm", "alibi")

# what each library model must report (n/a where the probe does not apply)
EXPECTED = {
    "llama": dict(shift=PASS, cache=PASS, padding=PASS, rope_norm=PASS, alibi=NA, length=PASS, passkey=NA),
    "mistral": dict(shift=PASS, cache=PASS, padding=PASS, rope_norm=PASS, alibi=NA, length=PASS, passkey=NA),
    "gpt_neox": dict(shift=PASS, cache=PASS, padding=PASS, rope_norm=PASS, alibi=NA, length=PASS, passkey=NA),
    "bloom": dict(shift=NA, cache=PASS, padding=PASS, rope_norm=NA, alibi=PASS, length=PASS, passkey=NA),
    "t5": dict(shift=NA, cache=PASS, padding=PASS, rope_norm=NA, alibi=NA, length=PASS, passkey=NA),
}


def statuses(handle, only=None):
    return {r.probe: r for r in probe.run(handle, only)}


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_library_models_pass(arch):
    results = statuses(hf_handle(arch))
    got = {name: r.status for name, r in results.items()}
    assert got == EXPECTED[arch], {n: r.detail for n, r in results.items()}


def test_absolute_model_reports_information_not_failure():
    results = statuses(hf_handle("gpt2"), ["shift", "length"])
    assert results["shift"].status == NA and "absolute (learned): scores change" in results["shift"].detail
    assert results["length"].status == NA and "position table" in results["length"].detail


# ------------------------------------------------------------------ deliberate breakages

def _wrap_forward(model, change):
    forward = model.forward

    def wrapped(*args, **kwargs):
        return forward(*args, **change(kwargs))
    return wrapped


def _restart_positions(kwargs):
    """The decoding bug: each new token numbered from 0 instead of after the cache."""
    past, ids = kwargs.get("past_key_values"), kwargs.get("input_ids")
    if past is not None and past.get_seq_length() > 0 and kwargs.get("position_ids") is None:
        kwargs["position_ids"] = torch.arange(ids.shape[1])[None]
    return kwargs


def _drop_position_ids(kwargs):
    """Padding-unaware: position ids 0..T-1 whatever the attention mask says. (Harmless under
    a relative scheme, where left padding only shifts every real token by the same amount.)"""
    kwargs.pop("position_ids", None)
    return kwargs


def _drop_attention_mask(kwargs):
    """Padding attended: the attention mask never reaches the model."""
    kwargs.pop("attention_mask", None)
    return kwargs


def _half_angles(rotary):
    def forward(x, position_ids):
        freqs = (position_ids[..., None].half() * rotary.inv_freq.half()).float()  # angles rounded to fp16
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().float() * rotary.attention_scaling, emb.sin().float() * rotary.attention_scaling
    return forward


def _rotate_half_without_sign(x):
    half = x.shape[-1] // 2
    return torch.cat((x[..., half:], x[..., :half]), dim=-1)


def _power_of_two_slopes(num_heads, device=None):
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / num_heads) for i in range(num_heads)], device=device)


def _t5_restart(original):
    def compute_bias(self, query_length, key_length, device=None, past_seen_tokens=0):
        return original(self, query_length, key_length, device, 0)
    return compute_bias


def _break(arch, how, handle):
    """A context manager breaking `handle`'s model in one small place."""
    model = handle.model
    if how == "restart_positions":
        return patched(model, "forward", _wrap_forward(model, _restart_positions))
    if how == "padding_unaware":
        return patched(model, "forward", _wrap_forward(model, _drop_position_ids))
    if how == "mask_dropped":
        return patched(model, "forward", _wrap_forward(model, _drop_attention_mask))
    if how == "half_angles":
        rotary = model.base_model.rotary_emb
        return patched(rotary, "forward", _half_angles(rotary))
    if how == "rotate_half_sign":
        return patched(handle.modeling, "rotate_half", _rotate_half_without_sign)
    if how == "pow2_slopes":
        return patched(handle.modeling, "_get_alibi_slopes", _power_of_two_slopes)
    if how == "t5_restart":
        cls = handle.modeling.T5Attention
        return patched(cls, "compute_bias", _t5_restart(cls.compute_bias))
    raise ValueError(how)


# a rotate_half with the wrong sign is not a rotation, so it is not relative either
ALSO_FAILS = {("mistral", "rotate_half_sign"): {"shift"}}

BREAKAGES = [  # (arch, breakage, probe that must fail, words its verdict must contain)
    ("llama", "restart_positions", "cache", "numbered from 0"),
    ("llama", "mask_dropped", "padding", "left padding"),
    ("llama", "half_angles", "shift", "low precision"),
    ("mistral", "rotate_half_sign", "rope_norm", "not a rotation"),
    ("mistral", "restart_positions", "cache", "numbered from 0"),
    ("gpt_neox", "half_angles", "shift", "low precision"),
    ("gpt_neox", "mask_dropped", "padding", "left padding"),
    ("gpt2", "padding_unaware", "padding", "position ids not taken from the attention mask"),
    ("bloom", "pow2_slopes", "alibi", "power-of-two rule applied to 12 heads"),
    ("t5", "t5_restart", "cache", "numbered from 0"),
]


@pytest.mark.parametrize("arch,how,caught_by,words", BREAKAGES, ids=[f"{a}-{h}" for a, h, *_ in BREAKAGES])
def test_breakage_is_caught_by_the_right_probe(arch, how, caught_by, words):
    handle = hf_handle(arch)
    with _break(arch, how, handle):
        results = statuses(handle, STRUCTURAL)
    assert results[caught_by].status == FAIL, results[caught_by].detail
    assert words in results[caught_by].detail
    if arch in EXPECTED:  # every other applicable probe still passes
        also = ALSO_FAILS.get((arch, how), set())
        assert all(r.status in (PASS, NA) for name, r in results.items() if name != caught_by and name not in also), \
            {n: r.detail for n, r in results.items()}
    # the model is intact again afterwards
    assert statuses(handle, [caught_by])[caught_by].status == PASS


def test_missing_transformers_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtra, match=r"\.\[probe\]"):
        hf_handle("llama")


# ------------------------------------------------------------------ other targets

def test_lab_model_in_process():
    from course.lab.model import ModelConfig, TinyDecoder
    from course.probe.targets import LabHandle

    cfg = dict(vocab_size=40, d_model=48, n_heads=12, n_layers=1, d_ff=64, train_len=16)
    torch.manual_seed(0)
    alibi = LabHandle("recall:alibi", TinyDecoder(ModelConfig(scheme="alibi", **cfg)).eval(), "recall", trained=False)
    got = {n: r.status for n, r in statuses(alibi).items()}
    assert got == dict(shift=NA, cache=NA, padding=NA, rope_norm=NA, alibi=PASS, length=PASS, passkey=NA)
    rope = LabHandle("recall:rope", TinyDecoder(ModelConfig(scheme="rope", **cfg)).eval(), "recall", trained=False)
    assert statuses(rope, ["rope_norm"])["rope_norm"].status == PASS


def test_trained_lab_probes_run_on_the_recall_task():
    """The passkey and task-loss code paths (on an untrained model standing in for a cached one)."""
    from course.lab.model import ModelConfig, TinyDecoder
    from course.lab.tasks import RECALL_VOCAB
    from course.probe.targets import LabHandle

    torch.manual_seed(0)
    model = TinyDecoder(ModelConfig(vocab_size=RECALL_VOCAB, scheme="rope", d_model=32, n_heads=2, n_layers=1,
                                    d_ff=64, train_len=32)).eval()
    results = statuses(LabHandle("recall:rope", model, "recall", trained=True), ["length", "passkey"])
    assert results["passkey"].status == FAIL and "first miss at 1x" in results["passkey"].detail
    assert set(results["length"].values["accuracy"]) == {1, 2, 4}


def test_sandboxed_factory_target(tmp_path):
    from course.probe.factory import factory_handle

    handle = factory_handle(str(ROOT / f"{EXAMPLE}:make_model"))
    try:
        assert handle.sandboxed
        got = {n: r.status for n, r in statuses(handle).items()}
        assert got == dict(shift=PASS, cache=PASS, padding=PASS, rope_norm=PASS, alibi=NA, length=PASS, passkey=NA)
    finally:
        handle.close()
    broken = factory_handle(str(ROOT / f"{EXAMPLE}:make_model_restarting_positions"))
    try:
        results = statuses(broken, ["cache", "shift"])
        assert results["cache"].status == FAIL and results["shift"].status == PASS
    finally:
        broken.close()


def test_minimal_factory_in_process(tmp_path, capsys):
    """Only (B, T) -> (B, T, V): the probes that need more say n/a; the warning is loud."""
    (tmp_path / "mine.py").write_text(
        "import torch\n"
        "class Bag(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.emb = torch.nn.Embedding(50, 50)\n"
        "    def forward(self, input_ids):\n"
        "        return self.emb(input_ids).cumsum(1)\n"
        "def build():\n    return Bag()\n")
    from course.probe.factory import factory_handle

    handle = factory_handle(f"{tmp_path / 'mine.py'}:build", in_process=True)
    assert "IN THIS PROCESS" in capsys.readouterr().err
    got = {n: r.status for n, r in statuses(handle).items()}
    assert got == dict(shift=NA, cache=NA, padding=NA, rope_norm=NA, alibi=NA, length=PASS, passkey=NA)


def test_cli_json_and_figures(tmp_path):
    out = subprocess.run([sys.executable, "-m", "course.probe", "--hf", "llama", "--format", "json",
                          "--figures", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["target"]["name"] == "hf:llama"
    assert {p["probe"]: p["status"] for p in report["probes"]} == EXPECTED["llama"]
    assert report["summary"] == {"pass": 5, "fail": 0, "n/a": 2}
    for p in report["probes"]:
        if p["status"] != NA:
            assert Path(p["figure"]).stat().st_size > 1000


def test_cli_factory_target_and_bad_target(capsys):
    from course.probe.__main__ import main

    assert main([str(ROOT / f"{EXAMPLE}:make_model_restarting_positions"), "--only", "cache"]) == 0
    out = capsys.readouterr().out
    assert "FAIL  cached decoding = full pass" in out and "(sandboxed)" in out
    assert main(["no_such_file.py:make"]) == 2
    assert "no file" in capsys.readouterr().err


# ------------------------------------------------ factories that misdescribe themselves
LIAR = '''
import torch


class Liar(torch.nn.Module):
    """Runs, but every optional attribute lies: wrong types, absurd sizes, garbage shapes."""
    position_scheme = ATTRIBUTES["position_scheme"]
    train_len = ATTRIBUTES["train_len"]
    head_dim = ATTRIBUTES["head_dim"]

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 50)

    def forward(self, input_ids, position_ids=None):
        return self.emb(input_ids).cumsum(1)

    def attention_scores(self, input_ids, position_ids=None):
        return torch.zeros(ATTRIBUTES["scores_shape"])

    def apply_rope(self, x, position_ids):
        return x[..., :1]

    def alibi_bias(self, T):
        return torch.zeros(3)


def build():
    return Liar()


def build_rebinding_the_description():
    """The probe's own helper lives in this file's namespace: answer for it."""
    globals()["_course_probe_describe"] = lambda model: DESCRIPTION
    return Liar()
'''

LIES = {"position_scheme": ["rope"], "train_len": 10 ** 12, "head_dim": 10 ** 9, "scores_shape": (16, 16)}


def liar(tmp_path, attributes=LIES, description=None) -> Path:
    path = tmp_path / "liar.py"
    path.write_text(f"ATTRIBUTES = {attributes!r}\nDESCRIPTION = {description!r}\n" + LIAR)
    return path


def probe_json(spec, capsys, *args) -> dict:
    from course.probe.__main__ import main

    assert main([spec, "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("in_process", [False, True])
def test_a_factory_that_lies_gets_a_report_with_reasons(tmp_path, capsys, in_process):
    """train_len 10**12 is not allocated, head_dim 10**9 is not used, garbage shapes are failures with a reason."""
    args = ("--in-process",) if in_process else ()
    report = probe_json(f"{liar(tmp_path)}:build", capsys, *args, "--figures", str(tmp_path / "figures"))
    capsys.readouterr()
    probes = {p["probe"]: p for p in report["probes"]}
    assert report["target"]["scheme"] is None and report["target"]["train_len"] == 10 ** 12
    assert probes["length"]["status"] == NA and "train_len" in probes["length"]["detail"], probes["length"]
    assert probes["shift"]["status"] == FAIL and "attention_scores" in probes["shift"]["detail"], probes["shift"]
    assert probes["rope_norm"]["status"] == NA and "head_dim" in probes["rope_norm"]["detail"], probes["rope_norm"]
    assert probes["alibi"]["status"] == FAIL and "alibi_bias" in probes["alibi"]["detail"], probes["alibi"]


@pytest.mark.parametrize("description", [
    "not a dict",
    {"params": 5, "position_scheme": ["rope"], "train_len": 10 ** 12, "head_dim": "x", "has": "attention_scores"},
    {"params": ["position_ids", 7], "position_scheme": "rope" * 1000, "train_len": -3, "head_dim": 8,
     "has": ["apply_rope", None]},
])
def test_a_sandboxed_factory_that_forges_its_description_gets_a_report(tmp_path, capsys, description):
    """The description comes from the learner's process: whatever it says, a report, and no size from it unbounded."""
    report = probe_json(f"{liar(tmp_path, description=description)}:build_rebinding_the_description", capsys)
    target = report["target"]
    assert target["scheme"] in (None, "rope") and len(json.dumps(target)) < 2000, target
    probes = {p["probe"]: p for p in report["probes"]}
    assert set(probes) == set(probe.PROBES)
    assert probes["length"]["status"] in (PASS, NA), probes["length"]
    if not (isinstance(description, dict) and description.get("train_len", 0) > 0):
        assert any("train_len" in note for note in target["notes"]), target["notes"]


@pytest.mark.parametrize("body,says", [
    ("return 'not a model'", "forward"),
    ("raise TypeError('no model today')", "TypeError: no model today"),
])
def test_a_factory_whose_model_cannot_run_is_a_reason_not_a_traceback(tmp_path, capsys, body, says):
    from course.probe.__main__ import main

    (tmp_path / "broken.py").write_text(f"def build():\n    {body}\n")
    assert main([f"{tmp_path / 'broken.py'}:build"]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err
