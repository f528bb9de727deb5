"""The hidden suite's references for section 8 agree with Hugging Face transformers.

grader_tests/test_scaling.py computes its expected tables in float64 NumPy from each
method's definition. Here the same references are compared with transformers'
rope initialisation functions (modeling_rope_utils: "linear", "dynamic", "yarn",
"llama3"), fed with locally built LlamaConfig objects (no download). transformers computes
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
