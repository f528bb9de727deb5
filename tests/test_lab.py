"""The extrapolation lab (course/lab, notebook 09): model, schemes, tasks, cache, notebook."""
import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course.lab import cache, evaluation, tasks
from course.lab.model import (ROPE_SCALINGS, SCHEMES, ModelConfig, TinyDecoder, alibi_slopes, rope_inv_freq,
                              scaled_rope_table, t5_bucket)
from course.lab.training import TrainConfig, batch_for, train

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source_notebooks" / "09_extrapolation_lab" / "09_extrapolation_lab.ipynb"
L = 16  # a short training length keeps these tests fast


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(scheme, **kw):
    torch.manual_seed(0)
    model = TinyDecoder(ModelConfig(vocab_size=40, scheme=scheme, d_model=32, n_heads=2, d_ff=64, train_len=L,
                                    max_len=8 * L, **kw)).eval()
    if scheme == "t5":  # the table starts at zero; make the bias visible
        for block in model.blocks:
            torch.nn.init.normal_(block.attn.t5_table)
    return model


VARIANTS = [(s, None) for s in SCHEMES] + [("rope", m) for m in ROPE_SCALINGS]


@pytest.mark.parametrize("scheme,scaling", VARIANTS)
def test_forward_shapes_at_train_and_longer_lengths(scheme, scaling):
    model = make(scheme)
    model.rope_scaling = scaling
    for T in (L, 2 * L, 8 * L):
        logits = model(torch.randint(0, 40, (3, T)))
        assert logits.shape == (3, T, 40)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("scheme,scaling", VARIANTS)
def test_causal_no_future_leakage(scheme, scaling):
    model = make(scheme)
    model.rope_scaling = scaling
    T, j = 4 * L, 3 * L
    x = torch.randint(0, 40, (2, T))
    y = x.clone()
    y[:, j:] = (y[:, j:] + 1) % 40  # change every token from position j on
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :j], b[:, :j], rtol=0, atol=1e-5)
    assert (a[:, j:] - b[:, j:]).abs().max() > 1e-3


def test_the_schemes_really_differ():
    x = torch.randint(0, 40, (1, L))
    outs = {s: make(s)(x) for s in SCHEMES}
    for s in SCHEMES:
        for t in SCHEMES:
            if s < t:
                assert not torch.allclose(outs[s], outs[t]), (s, t)


@pytest.mark.parametrize("method", ROPE_SCALINGS)
def test_scaled_rope_is_plain_rope_up_to_the_training_length(method):
    plain, scaled = make("rope"), make("rope")
    scaled.rope_scaling = method
    with torch.no_grad():
        for T in (L // 2, L):  # factor max(1, T / L) = 1: nothing changes
            x = torch.randint(0, 40, (2, T))
            torch.testing.assert_close(scaled(x), plain(x), rtol=0, atol=0)
        x = torch.randint(0, 40, (2, 4 * L))  # factor 4: the long sequence is run differently
        assert (scaled(x) - plain(x)).abs().max() > 1e-3


def test_scaled_tables_follow_their_definitions():
    d, base, s = 16, 10000.0, 4.0
    plain = rope_inv_freq(d, base)
    for method in ROPE_SCALINGS:
        table, mscale = scaled_rope_table(d, base, method, 1.0, L)
        torch.testing.assert_close(table, plain)
        assert mscale == 1.0
    pi, _ = scaled_rope_table(d, base, "pi", s, L)
    torch.testing.assert_close(pi, plain / s)  # PI: angle(p) = angle(p / s)
    ntk, _ = scaled_rope_table(d, base, "ntk", s, L)
    assert ntk[0] == plain[0]  # fastest pair kept: local resolution intact
    torch.testing.assert_close(ntk[-1], plain[-1] / s)  # slowest pair interpolated by s
    yarn, mscale = scaled_rope_table(d, base, "yarn", s, L)
    assert yarn[0] == plain[0] and torch.isclose(yarn[-1], plain[-1] / s)
    assert (yarn <= plain).all() and (yarn >= plain / s - 1e-12).all()
    assert mscale == pytest.approx(0.1 * math.log(s) + 1)


def test_only_pi_blurs_neighbouring_positions():
    """At 4x, a head that looks one token back sees the same fast angle under NTK and YaRN, not PI."""
    d, s = 16, 4.0
    plain = rope_inv_freq(d, 10000.0)
    for method, kept in (("pi", False), ("ntk", True), ("yarn", True)):
        table, _ = scaled_rope_table(d, 10000.0, method, s, L)
        assert torch.isclose(table[0], plain[0]).item() is kept, method


def test_lab_pieces_agree_with_the_reference_solutions():
    from solutions import alibi, relative, scaling

    for d, s in ((16, 2.0), (16, 8.0), (32, 4.0)):
        yarn, mscale = scaling.yarn_inv_freq(d, 10000.0, s, 64)
        ours, our_mscale = scaled_rope_table(d, 10000.0, "yarn", s, 64)
        torch.testing.assert_close(ours.float(), yarn)
        assert our_mscale == pytest.approx(mscale)
        ntk = scaling.unscaled_inv_freq(d, scaling.ntk_scaled_base(10000.0, s, d))
        torch.testing.assert_close(scaled_rope_table(d, 10000.0, "ntk", s, 64)[0], ntk)
    for heads in (1, 3, 4, 6, 8):
        torch.testing.assert_close(alibi_slopes(heads).float(), alibi.alibi_slopes(heads))
    distance = torch.arange(600)
    assert torch.equal(t5_bucket(distance, 32, 32), relative.t5_relative_position_bucket(-distance, False, 32, 32))


def test_learned_rows_past_the_training_length_get_no_gradient():
    model = make("learned")
    out = model(torch.randint(0, 40, (2, L)))
    out.sum().backward()
    grad = model.pos.grad
    assert grad[:L].abs().sum() > 0 and grad[L:].abs().sum() == 0


def test_alibi_and_t5_biases_depend_on_distance_only():
    model = make("alibi")
    _, bias = model.position_signals(6, "cpu")
    slopes = model.slopes
    assert bias.shape == (model.cfg.n_heads, 6, 6)
    torch.testing.assert_close(bias[:, 5, 2], -3 * slopes)
    torch.testing.assert_close(bias[:, 4, 1], bias[:, 5, 2])
    _, buckets = make("t5").position_signals(200, "cpu")
    assert buckets[100, 100] == 0 and buckets[150, 50] == buckets[199, 0] == model.cfg.t5_buckets - 1


def test_recall_batch_targets_are_recallable():
    g = torch.Generator().manual_seed(0)
    for T in (64, 256):
        tokens, targets = tasks.recall_batch(8, T, g)
        assert tokens.shape == targets.shape == (8, T)
        assert (tokens[:, 0] == tasks.RECALL_BOS).all() and (tokens[:, 1:] != tasks.RECALL_BOS).all()
        rows, cols = (targets != tasks.IGNORE).nonzero(as_tuple=True)
        assert len(rows) > 0
        for r, c in zip(rows.tolist(), cols.tolist()):
            assert tokens[r, c + 1] == targets[r, c]  # the target is the next token
            earlier = (tokens[r, :c] == tokens[r, c]).nonzero().flatten()
            assert len(earlier) == 1  # the current symbol occurred exactly once before
            assert tokens[r, earlier[0] + 1] == targets[r, c]  # ...followed by the answer
        assert tokens.max() < tasks.RECALL_VOCAB


def test_passkey_batch_places_the_needle():
    g = torch.Generator().manual_seed(0)
    for depth in (0.0, 0.5, 1.0):
        tokens, start, answer = tasks.passkey_batch(4, 64, depth, g)
        at = tasks.needle_position(64, depth)
        assert (tokens[:, 0] == tasks.RECALL_BOS).all()
        assert torch.equal(tokens[:, at + 1: at + tasks.SEG], answer)
        assert torch.equal(tokens[:, start], tokens[:, at])
        assert torch.equal(tokens[:, start + 1:], answer)
    assert tasks.needle_position(64, 0.0) == 1 and tasks.needle_position(64, 1.0) + 2 * tasks.SEG == 64 - tasks.SEG


def test_char_corpus_ships_with_python():
    ids = tasks.encode("def f(x):\n\treturn x\n")
    assert tasks.decode(ids) == "def f(x):\n    return x\n"
    train_ids, heldout, info = tasks.char_corpus()
    assert info["chars"] > 200_000 and len(heldout) > 20_000
    assert int(train_ids.max()) < tasks.CHAR_BOS
    tokens, targets = tasks.char_batch(train_ids, 3, 32, torch.Generator().manual_seed(0))
    assert (tokens[:, 0] == tasks.CHAR_BOS).all()
    assert torch.equal(tokens[:, 1:], targets[:, :-1])  # each target is the next character


@pytest.mark.parametrize("task,steps,drop", [("recall", 100, 0.2), ("chars", 40, 0.8)])
def test_a_tiny_training_run_lowers_the_loss(task, steps, drop):
    cfg = TrainConfig(task=task, scheme="rope", steps=steps, batch=8, train_len=32, warmup=5, d_model=32,
                      n_heads=2, d_ff=64)
    model, info = train(cfg, progress=False)
    torch.manual_seed(cfg.seed)
    untrained = TinyDecoder(cfg.model_config()).eval()  # the same initial weights
    tokens, targets = batch_for(cfg, torch.Generator().manual_seed(99), batch=64)
    with torch.no_grad():
        before, after = (F.cross_entropy(m(tokens).flatten(0, 1), targets.flatten(), ignore_index=tasks.IGNORE).item()
                         for m in (untrained, model))
    assert after < before - drop, (before, after)
    assert info["loss_curve"][-1][1] < info["loss_curve"][0][1]


def test_evaluation_reports_every_length_and_depth():
    model = TinyDecoder(ModelConfig(vocab_size=tasks.RECALL_VOCAB, scheme="alibi", d_model=32, n_heads=2,
                                    d_ff=64, train_len=32)).eval()
    entry = evaluation.eval_recall(model, 64, tokens_budget=512)
    assert 0 <= entry["accuracy"] <= 1 and len(entry["by_position"]) == 64 // evaluation.RECALL_BIN
    assert len(evaluation.eval_passkey(model, 64, trials=2)) == len(evaluation.DEPTHS)


def test_cache_has_every_scheme_at_every_length():
    assert cache.missing() == [], "run `python -m course.lab` to fill the cache"
    results = cache.load_results()
    for task in ("recall", "chars"):
        for variant in cache.VARIANTS:
            assert variant in results[task], (task, variant)
            record = results["runs"][(task, variant.split("+")[0])]
            L = record["train"]["train_len"]
            lengths = sorted(int(n) for n in results[task][variant])
            assert lengths == [m * L for m in evaluation.MULTIPLES], (task, variant)
            for n in lengths:
                entry = results[task][variant][str(n)]
                key = "accuracy" if task == "recall" else "bits_per_char"
                assert math.isfinite(entry[key])
                assert len(entry["by_position"]) == n // (evaluation.RECALL_BIN if task == "recall" else evaluation.CHAR_BIN)
                if task == "recall":
                    assert len(entry["passkey"]) == len(evaluation.DEPTHS)


def test_notebook_folder_holds_only_the_notebook():
    assert NOTEBOOK.exists()
    assert [p.name for p in NOTEBOOK.parent.iterdir()] == [NOTEBOOK.name]


def test_notebook_runs_from_the_cache_without_training(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any("RETRAIN = False" in c.source for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,  # list every error, not the first
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 5
