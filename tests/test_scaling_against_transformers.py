"""The hidden suite's references for section 8 agree with Hugging Face transformers.

grader_tests/test_scaling.py computes its expected tables in float64 NumPy from each
method's definition. Here the same references are compared with transformers'
rope initialisation functions (modeling_rope_utils: "linear", "dynamic", "yarn",
"llama3"), fed with locally built LlamaConfig objects (no download). At the end,
rope_from_config (the solution and the suite's reference) is compared with the same functions
(and "longrope", and GPT-NeoX's default RoPE) on configs of real model families. transformers computes
in float32, so agreement is to float32 accuracy. Skipped when transformers is absent
(it is a dev dependency only).
"""
import importlib.util
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
rope_utils = pytest.importorskip("transformers.modeling_rope_utils")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hidden_scaling_suite", ROOT / "grader_tests" / "test_scaling.py")
suite = importlib.util.module_from_spec(_spec)
with warnings.catch_warnings():  # its `exercise` marker is registered by grader_tests/conftest.py only
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    _spec.loader.exec_module(suite)

RTOL = 1e-5  # float32 tables (transformers computes pow and the ramp in float32)


@pytest.fixture(autouse=True)
def _quiet_transformers():
    """Config validation logs warnings (e.g. factor vs max_position_embeddings); they are irrelevant here."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def config(d, max_position_embeddings, **rope_parameters):
    return transformers.LlamaConfig(hidden_size=2 * d, num_attention_heads=2, head_dim=d,
                                    max_position_embeddings=max_position_embeddings,
                                    rope_parameters=rope_parameters)


def hf(rope_type, cfg, **kwargs):
    inv_freq, attention_factor = rope_utils.ROPE_INIT_FUNCTIONS[rope_type](cfg, "cpu", **kwargs)
    return inv_freq.double().numpy(), float(attention_factor)


def assert_tables_agree(ours, theirs, what):
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == theirs.shape, what
    gap = np.max(np.abs(ours - theirs) / np.abs(theirs))
    assert gap < RTOL, f"{what}: largest relative difference {gap:.3g}"


@pytest.mark.parametrize("d,base,factor", [(8, 10000.0, 2.0), (64, 500000.0, 8.0), (128, 10000.0, 4.5)])
def test_linear(d, base, factor):
    theirs, att = hf("linear", config(d, 4096, rope_type="linear", rope_theta=base, factor=factor))
    assert_tables_agree(suite.ref_theta(d, base) / factor, theirs, f"linear d={d} base={base} factor={factor}")
    assert att == 1.0


@pytest.mark.parametrize("d,base,factor,L", [(8, 10000.0, 2.0, 64), (64, 500000.0, 8.0, 2048), (128, 10000.0, 1.0, 4096)])
@pytest.mark.parametrize("length_ratio", [0.25, 1.0, 1.5, 4.0, 17.0])
def test_dynamic(d, base, factor, L, length_ratio):
    seq_len = max(1, int(L * length_ratio))
    # transformers' dynamic NTK takes the original length from max_position_embeddings
    theirs, _ = hf("dynamic", config(d, L, rope_type="dynamic", rope_theta=base, factor=factor), seq_len=seq_len)
    ours = suite.ref_dynamic(d, base, factor, seq_len, L)
    assert_tables_agree(ours, theirs, f"dynamic d={d} base={base} factor={factor} seq_len={seq_len} L={L}")


def test_ntk_base_is_dynamic_at_the_matching_length():
    """Static NTK's base equals dynamic NTK's when factor*s/L - (factor-1) equals the static factor."""
    d, base, L = 32, 10000.0, 1024
    # with factor 1, dynamic's effective scale is s / L: at s = 4L it is 4
    theirs, _ = hf("dynamic", config(d, L, rope_type="dynamic", rope_theta=base, factor=1.0), seq_len=4 * L)
    assert_tables_agree(suite.ref_theta(d, suite.ref_ntk_base(base, 4.0, d)), theirs, "NTK base, factor 4")


YARN_SETTINGS = [
    # d, base, factor, original length, beta_fast, beta_slow, truncate
    (16, 10000.0, 2.0, 256, 32.0, 1.0, True),
    (64, 10000.0, 4.0, 1024, 32.0, 1.0, True),
    (64, 10000.0, 4.0, 1024, 32.0, 1.0, False),
    (64, 10000.0, 8.0, 2048, 16.0, 2.0, True),
    (128, 500000.0, 8.0, 8192, 32.0, 1.0, True),
    (128, 1000000.0, 4.0, 32768, 32.0, 1.0, True),   # Qwen2.5-style
    (16, 10000.0, 4.0, 64, 32.0, 1.0, True),          # fast bound clipped at pair 0
    (16, 500.0, 4.0, 8192, 32.0, 1.0, True),          # slow bound past the last pair
    (32, 10000.0, 1.0, 1024, 32.0, 1.0, True),        # no scaling
]


@pytest.mark.parametrize("d,base,factor,L,beta_fast,beta_slow,truncate", YARN_SETTINGS)
def test_yarn(d, base, factor, L, beta_fast, beta_slow, truncate):
    cfg = config(d, int(L * factor), rope_type="yarn", rope_theta=base, factor=factor,
                 original_max_position_embeddings=L, beta_fast=beta_fast, beta_slow=beta_slow, truncate=truncate)
    theirs, their_attention = hf("yarn", cfg)
    ours = suite.ref_yarn(d, base, factor, L, beta_fast, beta_slow, truncate)
    assert_tables_agree(ours, theirs, f"yarn {(d, base, factor, L, beta_fast, beta_slow, truncate)}")
    assert math.isclose(suite.ref_attention_factor(factor), their_attention, rel_tol=1e-12)


def test_seed_yarn_is_not_yarn():
    """The seed tutorial's 'YaRN' (NTK base scaling) differs from transformers' YaRN."""
    d, base, factor, L = 128, 10000.0, 16.0, 4096
    cfg = config(d, int(L * factor), rope_type="yarn", rope_theta=base, factor=factor,
                 original_max_position_embeddings=L)
    theirs, attention = hf("yarn", cfg)
    seed = suite.ref_theta(d, suite.ref_ntk_base(base, factor, d))
    assert np.max(np.abs(seed - theirs) / theirs) > 0.1
    assert attention > 1.2


LLAMA_SETTINGS = [
    (128, 500000.0, 8.0, 8192, 1.0, 4.0),   # Llama 3.1
    (64, 500000.0, 32.0, 8192, 1.0, 4.0),   # Llama 3.2 small models use factor 32
    (16, 10000.0, 4.0, 256, 1.0, 4.0),
    (32, 10000.0, 16.0, 512, 0.5, 2.0),
]


@pytest.mark.parametrize("d,base,factor,L,low,high", LLAMA_SETTINGS)
def test_llama3(d, base, factor, L, low, high):
    cfg = config(d, int(L * factor), rope_type="llama3", rope_theta=base, factor=factor,
                 original_max_position_embeddings=L, low_freq_factor=low, high_freq_factor=high)
    theirs, att = hf("llama3", cfg)
    assert_tables_agree(suite.ref_llama3(d, base, factor, L, low, high), theirs,
                        f"llama3 {(d, base, factor, L, low, high)}")
    assert att == 1.0


# ---------------------------------------------------------------- rope_from_config
# The solution reads plain config dicts of real model families (written out in the hidden
# suite, MODEL_CONFIGS); transformers reads the same numbers from a LlamaConfig. Both sides
# must agree, and the suite's float64 reference must agree with transformers too.
_spec_solution = importlib.util.spec_from_file_location("scaling_solution", ROOT / "solutions" / "scaling.py")
solution = importlib.util.module_from_spec(_spec_solution)
_spec_solution.loader.exec_module(solution)


def hf_from_dict(cfg, head_dim=None, seq_len=None):
    """transformers' (inv_freq, attention scaling) for a plain config dict, via a LlamaConfig."""
    rope = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    rope["rope_type"] = rope.get("rope_type", rope.pop("type", "default"))
    rope.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    if "partial_rotary_factor" in cfg:
        rope.setdefault("partial_rotary_factor", cfg["partial_rotary_factor"])
    extra = {}
    if "original_max_position_embeddings" in cfg:  # Phi-3 keeps it at the top level
        extra["original_max_position_embeddings"] = cfg["original_max_position_embeddings"]
    hf_config = transformers.LlamaConfig(
        hidden_size=cfg["hidden_size"], num_attention_heads=cfg["num_attention_heads"],
        head_dim=head_dim or cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"],
        max_position_embeddings=cfg["max_position_embeddings"], rope_parameters=rope, **extra)
    if rope["rope_type"] == "default":
        # GPT-NeoX's default rope reads partial_rotary_factor (Llama's ignores it); same config fields
        from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding
        inv_freq, attention = GPTNeoXRotaryEmbedding.compute_default_rope_parameters(hf_config, device="cpu")
    else:
        inv_freq, attention = rope_utils.ROPE_INIT_FUNCTIONS[rope["rope_type"]](hf_config, "cpu", seq_len=seq_len)
    return inv_freq.double().numpy(), float(attention)


CONFIG_CASES = [
    ("Mistral-7B-v0.1", None, None),
    ("Llama-3.1-8B", None, None),
    ("Qwen2.5-7B-yarn", None, None),
    ("DeepSeek-V2-Lite", 64, None),
    ("Phi-3-mini-128k", None, None),
    ("Phi-3-mini-128k", None, 4096),
    ("Phi-3-mini-128k", None, 8192),
    ("GPT-NeoX-20B", None, None),
]


@pytest.mark.parametrize("name,head_dim,seq_len", CONFIG_CASES)
def test_rope_from_config_real_models(name, head_dim, seq_len):
    cfg = suite.MODEL_CONFIGS[name]
    theirs, their_attention = hf_from_dict(cfg, head_dim, seq_len)
    ours, our_attention = solution.rope_from_config(cfg, head_dim, seq_len=seq_len)
    assert ours.dtype == solution.torch.float32
    assert_tables_agree(ours.numpy(), theirs, f"solution, {name}")
    assert math.isclose(our_attention, their_attention, rel_tol=1e-6), (our_attention, their_attention)
    ref, ref_attention = suite.ref_rope_from_config(cfg, head_dim, seq_len)
    assert_tables_agree(ref, theirs, f"suite reference, {name}")
    assert math.isclose(ref_attention, their_attention, rel_tol=1e-6)


MORE_CONFIGS = [
    dict(hidden_size=4096, num_attention_heads=32, rope_theta=10000.0, max_position_embeddings=16384,
         rope_scaling={"type": "linear", "factor": 4.0}),
    dict(hidden_size=512, num_attention_heads=8, max_position_embeddings=2048,
         rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 50000.0, "partial_rotary_factor": 0.5}),
    dict(hidden_size=256, num_attention_heads=4, rope_theta=10000.0, max_position_embeddings=8192,
         rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048,
                          "beta_fast": 16.0, "beta_slow": 2.0, "truncate": False, "attention_factor": 1.25}),
    dict(hidden_size=2048, num_attention_heads=16, rope_theta=10000.0, max_position_embeddings=163840,
         rope_scaling={"factor": 40, "mscale": 1.0, "mscale_all_dim": 0.5,
                       "original_max_position_embeddings": 4096, "type": "yarn"}),
    dict(hidden_size=2560, num_attention_heads=32, rope_theta=10000.0, partial_rotary_factor=0.4,  # Phi-2
         max_position_embeddings=2048, rope_scaling=None),
]


@pytest.mark.parametrize("cfg", MORE_CONFIGS)
@pytest.mark.parametrize("seq_len", [None, 6000])
def test_rope_from_config_more(cfg, seq_len):
    theirs, their_attention = hf_from_dict(cfg, seq_len=seq_len)
    ours, our_attention = solution.rope_from_config(cfg, seq_len=seq_len)
    assert_tables_agree(ours.numpy(), theirs, f"solution, {cfg}")
    assert math.isclose(our_attention, their_attention, rel_tol=1e-6), (our_attention, their_attention)
    ref, ref_attention = suite.ref_rope_from_config(cfg, seq_len=seq_len)
    assert_tables_agree(ref, theirs, f"suite reference, {cfg}")
    assert math.isclose(ref_attention, their_attention, rel_tol=1e-6)
