"""The extrapolation lab (course/lab, notebook 09): model, schemes, tasks, cache, shipped
weights, anatomy, plugging the learner's functions, notebook."""
import ast
import builtins
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course.lab import anatomy, cache, evaluation, plug, tasks
from course.lab.model import (ROPE_SCALINGS, SCHEMES, ModelConfig, TinyDecoder, alibi_slopes, rope_inv_freq,
                              scaled_rope_table, t5_bucket)
from course.lab.training import TrainConfig, batch_for, train

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source_notebooks" / "09_extrapolation_lab" / "09_extrapolation_lab.ipynb"
L = 16  # a short training length keeps these tests fast
RUNS = [(t, s) for t in ("recall", "chars") for s in SCHEMES]


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


def test_llama3_keeps_fast_pairs_and_interpolates_slow_ones():
    """Wavelength under L/4: kept; over L: divided by s; in between: strictly between the two."""
    d, base, s, n = 16, 10000.0, 4.0, 64
    plain = rope_inv_freq(d, base)
    table, mscale = scaled_rope_table(d, base, "llama3", s, n)
    wavelength = 2 * math.pi / plain
    assert mscale == 1.0
    assert (wavelength < n / 4).any() and (wavelength > n).any() and ((wavelength > n / 4) & (wavelength < n)).any()
    for k in range(d // 2):
        if wavelength[k] < n / 4:
            assert table[k] == plain[k]
        elif wavelength[k] > n:
            torch.testing.assert_close(table[k], plain[k] / s)
        else:
            assert plain[k] / s < table[k] < plain[k]


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
    for d, s, original in ((16, 2.0, 64), (16, 8.0, 64), (32, 4.0, 128), (128, 8.0, 8192), (64, 1.5, 100)):
        ours, our_mscale = scaled_rope_table(d, 10000.0, "llama3", s, original)
        torch.testing.assert_close(ours.float(), scaling.llama3_inv_freq(d, 10000.0, s, original))
        assert our_mscale == 1.0
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


def test_cache_has_every_scheme_at_every_length_for_every_seed():
    assert cache.missing() == [], "run `python -m course.lab` to fill the cache"
    results = cache.load_results()
    assert results["seeds"] == list(cache.SEEDS) and len(cache.SEEDS) >= 3
    for task in ("recall", "chars"):
        for variant in cache.VARIANTS:
            assert sorted(results[task][variant]) == list(cache.SEEDS), (task, variant)
            for seed in cache.SEEDS:
                record = results["runs"][(task, variant.split("+")[0], seed)]
                assert record["train"]["seed"] == seed
                L = record["train"]["train_len"]
                by_length = results[task][variant][seed]
                lengths = sorted(int(n) for n in by_length)
                assert lengths == [m * L for m in evaluation.MULTIPLES], (task, variant)
                for n in lengths:
                    entry = by_length[str(n)]
                    key = "accuracy" if task == "recall" else "bits_per_char"
                    assert math.isfinite(entry[key])
                    bins = evaluation.RECALL_BIN if task == "recall" else evaluation.CHAR_BIN
                    assert len(entry["by_position"]) == n // bins
                    if task == "recall":
                        assert len(entry["passkey"]) == len(evaluation.DEPTHS)
                    else:  # the sliding window scores the same characters at every length
                        assert entry["sliding"]["stride"] == n // evaluation.SLIDING_STRIDE
                        assert entry["sliding"]["min_context"] == n - n // evaluation.SLIDING_STRIDE
                        assert entry["sliding"]["scored"] == evaluation.SLIDING_BLOCKS * evaluation.SLIDING_WIDTH


def test_each_seed_is_its_own_training_run():
    """The seeds' records name different weights, trained with nothing but the seed changed."""
    results = cache.load_results()
    for task, scheme in RUNS:
        records = [results["runs"][(task, scheme, seed)] for seed in cache.SEEDS]
        assert len({r["info"]["weights_sha256"] for r in records}) == len(cache.SEEDS)
        configs = [{k: v for k, v in r["train"].items() if k != "seed"} for r in records]
        assert all(c == configs[0] for c in configs)
        assert configs[0] == {k: v for k, v in cache.default_config(task, scheme).to_dict().items() if k != "seed"}


def test_the_intervals_are_mean_min_and_max_over_the_seed_files():
    """plots.spread against the JSON files read directly."""
    from course.lab import plots

    results = cache.load_results()
    cases = (("chars", "alibi", "bits_per_char", 512), ("recall", "rope+yarn", "accuracy", 256))
    for task, variant, key, length in cases:
        values = []
        for seed in cache.SEEDS:
            record = json.loads(cache.result_path(task, variant.split("+")[0], seed=seed).read_text())
            values.append(record["eval"][variant][str(length)][key])
        expected = (sum(values) / len(values), min(values), max(values))
        assert plots.spread(results, task, variant, length, key) == expected
    sliding = [json.loads(cache.result_path("chars", "rope", seed=seed).read_text())["eval"]["rope"]["128"]["sliding"]
               for seed in cache.SEEDS]
    assert plots.spread(results, "chars", "rope", 128, plots.SLIDING)[1] == min(s["bits_per_char"] for s in sliding)


def test_sliding_window_equals_scoring_each_token_on_its_own():
    """A tiny model: the sliding-window bits per character equal, token by token, the loss
    of the model run on that token's own context (BOS and the characters of its window
    before it), and each scored token has at least length - stride characters of context."""
    torch.manual_seed(0)
    model = TinyDecoder(ModelConfig(vocab_size=tasks.CHAR_VOCAB, scheme="alibi", d_model=32, n_heads=2, d_ff=64,
                                    train_len=L)).eval()
    heldout = torch.randint(0, tasks.CHAR_BOS, (700,))
    blocks, width = 3, 8
    starts = evaluation.scored_blocks(heldout, blocks, width).tolist()
    scored = [t for start in starts for t in range(start, start + width)]
    for length in (L, 2 * L):
        stride = length // evaluation.SLIDING_STRIDE
        got = evaluation.eval_chars_sliding(model, heldout, length, blocks, width)
        bits = []
        for start in starts:
            for t in range(start, start + width):
                end = start + stride * ((t - start) // stride + 1)     # the window that scores t ends there
                context = heldout[end - length: t]
                assert length - stride <= len(context) < length
                tokens = torch.cat((torch.tensor([tasks.CHAR_BOS]), context))[None]
                with torch.no_grad():
                    logits = model(tokens)[0, -1]
                bits.append(F.cross_entropy(logits[None], heldout[t][None]).item() / math.log(2))
        assert got["scored"] == len(scored) == len(bits)
        assert got["bits_per_char"] == pytest.approx(sum(bits) / len(bits), abs=1e-4)
        assert got["min_context"] == length - stride
    with pytest.raises(ValueError):  # a window longer than the room before the first block
        evaluation.eval_chars_sliding(model, heldout, 4096, blocks, width)


def test_notebook_folder_holds_only_the_notebook():
    assert NOTEBOOK.exists()
    assert [p.name for p in NOTEBOOK.parent.iterdir()] == [NOTEBOOK.name]


def test_notebook_runs_from_the_cache_without_training(tmp_path):
    """Top to bottom from the shipped results and weights, beside the source notebooks of
    sections 6 to 8 (as a learner's notebooks sit beside it): 9.11 runs the trained models
    with those functions and finds the same accuracies."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any("RETRAIN = False" in c.source for c in nb.cells if c.cell_type == "code")
    for name in ("06_rope", "07_alibi", "08_scaling"):
        shutil.copytree(ROOT / "source_notebooks" / name, tmp_path / name)
    here = tmp_path / NOTEBOOK.parent.name
    here.mkdir()
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,  # list every error, not the first
                   resources={"metadata": {"path": str(here)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 9
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert printed.count(": yours, from") == len(plug.SOURCES), "9.11 did not find the functions of notebooks 06-08"
    assert printed.count("  same") == 4 and "DIFFERENT" not in printed
    assert list(here.iterdir()) == []  # the notebook writes nothing beside itself


# --------------------------------------------------------------------------------------
# Shipped weights: the models behind the cached results
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("task,scheme", RUNS)
def test_shipped_weights_are_the_runs_behind_the_results(task, scheme):
    path = cache.SHIPPED_WEIGHTS_DIR / f"{cache.run_name(task, scheme, cache.SHIPPED_SEED)}.pt"
    assert path.stat().st_size < 700_000  # float32 state dicts of ~75k (learned table: 140k) parameters
    saved = torch.load(path, weights_only=True)
    assert all(t.dtype == torch.float32 for t in saved["state"].values())
    record = json.loads(cache.result_path(task, scheme, seed=cache.SHIPPED_SEED).read_text())
    assert saved["config"] == record["train"]
    assert cache.weights_digest(saved["state"]) == record["info"]["weights_sha256"]


def test_only_the_shipped_seed_ships_weights():
    shipped = sorted(p.name for p in cache.SHIPPED_WEIGHTS_DIR.iterdir())
    assert shipped == sorted(f"{cache.run_name(t, s, cache.SHIPPED_SEED)}.pt" for t, s in RUNS)


def test_shipped_weights_reproduce_the_cached_numbers():
    """Evaluating the shipped weights now gives the numbers in the JSON (a different CPU
    may round a few answers the other way: a small tolerance)."""
    results = cache.load_results()
    seed = cache.SHIPPED_SEED
    rope = cache.load_model("recall", "rope")
    for n in (64, 128):
        got = evaluation.eval_recall(rope, n)["accuracy"]
        assert got == pytest.approx(results["recall"]["rope"][seed][str(n)]["accuracy"], abs=0.005)
    rope.rope_scaling = "llama3"
    got = evaluation.eval_recall(rope, 128)["accuracy"]
    assert got == pytest.approx(results["recall"]["rope+llama3"][seed]["128"]["accuracy"], abs=0.005)
    from course.lab.training import corpus
    alibi = cache.load_model("chars", "alibi")
    got = evaluation.eval_chars(alibi, corpus()[1], 64)["bits_per_char"]
    assert got == pytest.approx(results["chars"]["alibi"][seed]["64"]["bits_per_char"], abs=0.002)
    got = evaluation.eval_chars_sliding(alibi, corpus()[1], 128)["bits_per_char"]
    assert got == pytest.approx(results["chars"]["alibi"][seed]["128"]["sliding"]["bits_per_char"], abs=0.002)


def test_load_model_never_trains(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_model trained a model")

    monkeypatch.setattr(cache, "train", refuse)
    for task, scheme in RUNS:
        model = cache.load_model(task, scheme)
        assert model.cfg.scheme == scheme and not model.training


def test_own_weights_are_used_only_when_the_results_are_theirs(tmp_path, monkeypatch):
    own_dir, results_dir = tmp_path / "own", tmp_path / "results"
    own_dir.mkdir(), results_dir.mkdir()
    monkeypatch.setattr(cache, "WEIGHTS_DIR", own_dir)
    name = f"{cache.run_name('recall', 'alibi', cache.SHIPPED_SEED)}.pt"
    shipped = torch.load(cache.SHIPPED_WEIGHTS_DIR / name, weights_only=True)
    retrained = {"config": shipped["config"], "state": {k: v + 0.01 for k, v in shipped["state"].items()}}
    torch.save(retrained, own_dir / name)
    record = json.loads(cache.result_path("recall", "alibi").read_text())
    shutil.copy(cache.result_path("recall", "alibi"), results_dir)
    # the shipped results name the shipped weights: a stale file of one's own is ignored
    assert cache.weights_path("recall", "alibi", results_dir) == cache.SHIPPED_WEIGHTS_DIR / name
    # after a retrain the results name the learner's weights, and those are loaded
    record["info"]["weights_sha256"] = cache.weights_digest(retrained["state"])
    cache.result_path("recall", "alibi", results_dir).write_text(json.dumps(record))
    assert cache.weights_path("recall", "alibi", results_dir) == own_dir / name
    model = cache.load_model("recall", "alibi", directory=results_dir)
    torch.testing.assert_close(model.tok.weight, retrained["state"]["tok.weight"])
    # another seed's weights exist only where a retrain put them: none here, the shipped seed's are not used
    assert cache.weights_path("recall", "alibi", results_dir, seed=1) is None
    assert cache.load_model("recall", "alibi", seed=1) is None


# --------------------------------------------------------------------------------------
# Anatomy: the scores find what hand-built heads do
# --------------------------------------------------------------------------------------

def attending_at(distance, T=48):
    """A T5 model whose every head attends (almost) only to the key `distance` tokens back:
    queries and keys are zero, so the scores are the learned bias alone."""
    model = make("t5")
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight.zero_(), block.attn.qkv.bias.zero_()
            block.attn.t5_table.zero_()
            block.attn.t5_table[distance] = 30.0  # buckets 0..15 are exact distances
    return model, torch.randint(0, 40, (3, T))


def test_a_previous_token_head_scores_one():
    model, tokens = attending_at(1)
    for weights in anatomy.attention_maps(model, tokens):
        torch.testing.assert_close(anatomy.previous_token_score(weights), torch.ones(2), atol=1e-6, rtol=0)
        profile = anatomy.lookback_profile(weights, range(0, 5))
        assert (profile.argmax(-1) == 1).all() and (profile[:, 2:] < 1e-6).all()
        # offset 0: only the first query, which has nothing before it, looks at itself
        torch.testing.assert_close(profile[:, 0], torch.full((2,), 1 / tokens.shape[1]))
        # every query but the first looks exactly one token back
        assert anatomy.mean_distance(weights, from_position=1) == pytest.approx(1.0, abs=1e-5)


def test_a_head_three_tokens_back_reaches_three():
    model, tokens = attending_at(3)
    weights = anatomy.attention_maps(model, tokens)[0]
    torch.testing.assert_close(anatomy.previous_token_score(weights, offset=3), torch.ones(2), atol=1e-6, rtol=0)
    assert (anatomy.lookback_profile(weights, range(0, 6)).argmax(-1) == 3).all()
    assert (anatomy.previous_token_score(weights) < 2 / tokens.shape[1]).all()  # only queries 1, 2 (nothing 3 back)
    torch.testing.assert_close(anatomy.mean_distance(weights, from_position=3), torch.full((2,), 3.0), atol=1e-4, rtol=0)


def test_mean_distance_of_uniform_attention():
    T = 20
    causal = torch.ones(T, T).tril()
    weights = (causal / causal.sum(-1, keepdim=True)).expand(1, 3, T, T)
    expected = sum(i / 2 for i in range(10, T)) / (T - 10)  # uniform over keys 0..i: mean distance i/2
    torch.testing.assert_close(anatomy.mean_distance(weights, from_position=10), torch.full((3,), expected))


def test_induction_score_finds_the_token_after_the_earlier_copy():
    tokens, targets = tasks.recall_batch(4, 64, torch.Generator().manual_seed(0))
    scored = targets != tasks.IGNORE
    rows, queries, earlier = anatomy.earlier_copies(tokens, scored)
    assert len(rows) == int(scored.sum())  # every scored query has an earlier copy
    assert (tokens[rows, queries] == tokens[rows, earlier]).all()
    B, T, H = 4, 64, 2
    weights = torch.zeros(B, H, T, T)
    weights[:, :, torch.arange(T), torch.arange(T)] = 1.0  # attend to oneself by default
    weights[rows, 0, queries] = 0.0
    weights[rows, 0, queries, earlier + 1] = 1.0  # head 0: a textbook induction head
    weights[rows, 1, queries] = 0.0
    weights[rows, 1, queries, earlier + 3] = 1.0  # head 1: reads three after the earlier copy
    torch.testing.assert_close(anatomy.induction_score(weights, tokens, scored), torch.tensor([1.0, 0.0]))
    profile = anatomy.copy_profile(weights, tokens, scored, range(-1, 5))
    assert profile[0].argmax() == 2 and profile[1].argmax() == 4  # offsets 1 and 3
    prev_model, _ = attending_at(1, T)
    prev = anatomy.attention_maps(prev_model, tokens % 40)[1]
    assert (anatomy.induction_score(prev, tokens, scored) < 0.2).all()  # a previous-token head is not one


def test_learned_rows_past_the_training_length_keep_their_initial_values():
    model = cache.load_model("chars", "learned")
    record = json.loads(cache.result_path("chars", "learned", seed=cache.SHIPPED_SEED).read_text())
    initial = anatomy.initial_model(model, record["train"]["seed"]).pos
    change = anatomy.row_change(model.pos, initial)
    n = model.cfg.train_len
    assert (change[n:] == 0).all() and (change[:n] > 0).all()
    similarity = anatomy.row_similarity(model.pos[:8])
    torch.testing.assert_close(similarity.diagonal(), torch.ones(8))
    torch.testing.assert_close(similarity, similarity.T)


def test_pair_energy_follows_the_pairs_and_ignores_the_rotation():
    d, T = 8, 12
    q, k = torch.zeros(1, 2, T, d), torch.zeros(1, 2, T, d)
    q[..., 2], q[..., 2 + d // 2] = 1.0, 1.0  # pair 2 only (half-split: features k and k + d/2)
    k[0, 0, :, 2] = 3.0
    k[0, 1, :, 1] = 1.0  # head 1's keys live in pair 1: no pair is shared, no energy
    k[0, 1, :, 2] = 1e-9
    energy = anatomy.pair_energy(q, k)
    torch.testing.assert_close(energy[0], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert energy[1].argmax() == 2  # the only pair where both are non-zero
    q, k = torch.randn(2, 3, T, d), torch.randn(2, 3, T, d)
    rotated = anatomy.pair_energy(plug.lab_apply_rope(q, torch.arange(T)), plug.lab_apply_rope(k, torch.arange(T)))
    torch.testing.assert_close(rotated, anatomy.pair_energy(q, k))
    torch.testing.assert_close(rotated.sum(-1), torch.ones(3))


# --------------------------------------------------------------------------------------
# Plugging the learner's functions into the trained models
# --------------------------------------------------------------------------------------

def notebook_with(path, *sources):
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_missing_notebooks_fall_back_to_the_lab_with_one_line_each(tmp_path):
    lines = []
    fns = plug.learner_functions(near=tmp_path / "09_extrapolation_lab", report=lines.append)
    assert fns == plug.LAB_OWN
    assert len(lines) == len(plug.SOURCES) and all("not found" in line for line in lines)


def test_only_definitions_run_and_unfinished_functions_fall_back(tmp_path):
    here = tmp_path / "09_extrapolation_lab"
    notebook_with(tmp_path / "06_rope" / "06_rope.ipynb",
                  "import torch\n%matplotlib inline",
                  "def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):\n"
                  "    # YOUR CODE HERE\n    raise NotImplementedError()")
    notebook_with(tmp_path / "07_alibi" / "07_alibi.ipynb",
                  "import math\nimport torch\nHEADS = 4",
                  "def alibi_slopes(n_heads):\n    return torch.tensor([2.0 ** (-8.0 * (i + 1) / n_heads) for i in range(n_heads)])\n"
                  "raise SystemExit('a demonstration that must not run')",
                  "def alibi_bias(slopes, q_pos, k_pos):\n    raise ValueError('shapes do not fit')")
    lines = []
    fns = plug.learner_functions(near=here, report=lines.append)
    assert fns["apply_rope"] is plug.LAB_OWN["apply_rope"]
    assert "not implemented yet" in lines[0] and "06_rope.ipynb" in lines[0]
    assert fns["alibi_slopes"] is not plug.LAB_OWN["alibi_slopes"] and "yours" in lines[1]
    torch.testing.assert_close(fns["alibi_slopes"](4), alibi_slopes(4))
    assert fns["alibi_bias"] is plug.LAB_OWN["alibi_bias"] and "ValueError: shapes do not fit" in lines[2]
    assert "08_scaling.ipynb not found" in lines[3]


def test_a_function_in_a_cell_that_cannot_run_falls_back_and_the_line_names_that_cell(tmp_path):
    notebook_with(tmp_path / "07_alibi" / "07_alibi.ipynb",
                  "import math\nimport torch",
                  "def alibi_slopes(n_heads):\n    return torch.tensor([2.0 ** (-8.0 * (i + 1) / n_heads) for i in range(n_heads)]",
                  "import nosuch_package_here\ndef alibi_bias(slopes, q_pos, k_pos):\n    return slopes")
    lines = []
    fns = plug.learner_functions(near=tmp_path / "09_extrapolation_lab", names=("alibi_slopes", "alibi_bias"),
                                 report=lines.append)
    assert fns == {name: plug.LAB_OWN[name] for name in ("alibi_slopes", "alibi_bias")}
    for line in lines:
        assert "07_alibi.ipynb does not define it; cells skipped: cell 2: SyntaxError: " in line, lines
        assert "(line 2)" in line and "cell 3: ModuleNotFoundError: No module named 'nosuch_package_here'" in line


def test_a_fallback_names_the_unfinished_helper_a_finished_function_calls(tmp_path):
    notebook_with(tmp_path / "08_scaling" / "08_scaling.ipynb",
                  "import math\nimport torch",
                  "def unscaled_inv_freq(d, base=10000.0):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
                  "def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):\n"
                  "    return unscaled_inv_freq(d, base) / factor, 1.0")
    lines = []
    fns = plug.learner_functions(near=tmp_path / "09_extrapolation_lab", names=("yarn_inv_freq",), report=lines.append)
    assert fns["yarn_inv_freq"] is plug.LAB_OWN["yarn_inv_freq"]
    assert "calls unscaled_inv_freq, which is not implemented yet" in lines[0], lines


def test_the_lab_fallbacks_reproduce_the_built_in_model_exactly():
    tokens = torch.randint(0, tasks.RECALL_VOCAB, (2, 256))
    rope, alibi = cache.load_model("recall", "rope"), cache.load_model("recall", "alibi")
    assert plug.max_logit_gap(rope, plug.plugged(rope, apply_rope=plug.LAB_OWN["apply_rope"]), tokens) < 1e-4
    assert plug.max_logit_gap(alibi, plug.plugged(alibi), tokens) < 1e-4
    for method, rule in (("yarn", plug.yarn_rule(plug.LAB_OWN["yarn_inv_freq"])),
                         ("llama3", plug.llama3_rule(plug.LAB_OWN["llama3_inv_freq"]))):
        builtin = cache.load_model("recall", "rope")
        builtin.rope_scaling = method
        assert plug.max_logit_gap(builtin, plug.plugged(rope, scaling=rule), tokens) == 0


def test_correct_functions_from_the_source_notebooks_reproduce_the_evaluation():
    """In the repository the sibling notebooks are the sources, with solutions: every
    function is found, and the models run with them score exactly as the built-in ones."""
    lines = []
    fns = plug.learner_functions(near=NOTEBOOK.parent, report=lines.append)
    assert all("yours" in line for line in lines), lines
    rope, alibi = cache.load_model("recall", "rope"), cache.load_model("recall", "alibi")
    yarn, llama = cache.load_model("recall", "rope"), cache.load_model("recall", "rope")
    yarn.rope_scaling, llama.rope_scaling = "yarn", "llama3"
    cases = [(rope, plug.plugged(rope, apply_rope=fns["apply_rope"])),
             (alibi, plug.plugged(alibi, alibi_slopes=fns["alibi_slopes"], alibi_bias=fns["alibi_bias"])),
             (yarn, plug.plugged(rope, scaling=plug.yarn_rule(fns["yarn_inv_freq"]))),
             (llama, plug.plugged(rope, scaling=plug.llama3_rule(fns["llama3_inv_freq"])))]
    for builtin, theirs in cases:
        assert plug.max_logit_gap(builtin, theirs, torch.randint(0, tasks.RECALL_VOCAB, (2, 512))) < 1e-2
        for n in (64, 256):
            assert evaluation.eval_recall(builtin, n, 4096) == evaluation.eval_recall(theirs, n, 4096)


def test_a_wrong_function_shows_in_the_accuracy():
    def slipped_rope(x, positions, base=10000.0):  # ladder base^(-k/d) instead of base^(-2k/d)
        d = x.shape[-1]
        angles = positions.double()[:, None] * base ** (-torch.arange(d // 2, dtype=torch.float64) / d)
        half = d // 2
        cos, sin = angles.cos().float(), angles.sin().float()
        return torch.cat((x[..., :half] * cos - x[..., half:] * sin, x[..., :half] * sin + x[..., half:] * cos), -1)

    rope = cache.load_model("recall", "rope")
    right = evaluation.eval_recall(rope, 64, 8192)["accuracy"]
    wrong = evaluation.eval_recall(plug.plugged(rope, apply_rope=slipped_rope), 64, 8192)["accuracy"]
    assert wrong < right - 0.2, (right, wrong)
    with pytest.raises(ValueError, match="rope or alibi"):
        plug.plugged(cache.load_model("recall", "t5"))(torch.zeros(1, 8, dtype=torch.long))


# --------------------------------------------------------------------------------------
# The notebook
# --------------------------------------------------------------------------------------

def _sections(nb):
    """[(heading, [code sources])] of the notebook's ## sections; the first is the set-up."""
    sections = [("set-up", [])]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            sections += [(line, []) for line in cell.source.splitlines() if line.startswith("## ")]
        elif cell.cell_type == "code":
            sections[-1][1].append(cell.source)
    return sections


def _bound_and_used(sources):
    bound, used = set(), set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, used


def test_every_section_runs_after_the_setup_cell_alone():
    """No section reads a name that only an earlier section defines."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup, *sections = _sections(nb)
    assert len(setup[1]) == 1 and len(sections) >= 13
    from_setup, _ = _bound_and_used(setup[1])
    for heading, sources in sections:
        bound, used = _bound_and_used(sources)
        borrowed = used - bound - from_setup - set(dir(builtins))
        assert not borrowed, f"{heading} uses {sorted(borrowed)} from another section"


def test_written_question_is_a_manual_answer_with_a_model_answer():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = [c for c in nb.cells if any(t.startswith("manual:") for t in c.metadata.get("tags", []))]
    _, answer_id, points = cell.metadata["tags"][0].split(":")
    assert cell.cell_type == "markdown" and "*Model answer.*" in cell.source and "*Marking.*" in cell.source
    assert cell.metadata["nbgrader"] == {"grade": True, "grade_id": f"answer-{answer_id}", "locked": False,
                                         "points": float(points), "schema_version": 3, "solution": True}
    question = nb.cells[nb.cells.index(cell) - 1]
    assert question.cell_type == "markdown" and f"({points} points)" in question.source


def test_nbgrader_releases_the_question_without_the_model_answer(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(NOTEBOOK.parent, course / "source_notebooks" / NOTEBOOK.parent.name)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    env = dict(os.environ, NBGRADER_EXCHANGE=str(tmp_path / "exchange"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", NOTEBOOK.parent.name, "--force"],
                          cwd=course, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    released = nbformat.read(course / "release" / NOTEBOOK.parent.name / NOTEBOOK.name, as_version=4)
    answer = next(c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "answer-alibi_reach")
    assert answer.source.strip() == "YOUR ANSWER HERE"
    text = NOTEBOOK.read_text()
    assert "Model answer" in text and "Model answer" not in (course / "release" / NOTEBOOK.parent.name / NOTEBOOK.name).read_text()
