"""Cached results: one small JSON file per (task, scheme, seed) run in course/lab/results/,
and the trained weights of the SHIPPED_SEED runs in course/lab/weights/ (float32 state
dicts; the other seeds' weights would triple the repository for figures that only need one).

``run_all(retrain=False)`` loads what is cached and trains only what is missing;
``run_all(retrain=True)`` trains everything again (15 to 30 s of CPU time per run on one
thread, plus its evaluation: about 25 minutes for all 36). ``python -m course.lab`` does
the same from a shell.

Each record names the weights it was evaluated with (``info["weights_sha256"]``), for every
seed. ``load_model`` returns those weights: the learner's own retrain in WEIGHTS_DIR when
the cached record is that retrain's, otherwise the weights shipped with the course. A stale
file in WEIGHTS_DIR (another version, another configuration) is never picked up, and
nothing is trained to open the notebook.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from course.files import write_atomic
from course.lab.evaluation import MULTIPLES, evaluate
from course.lab.model import ROPE_SCALINGS, SCHEMES, TinyDecoder
from course.lab.training import TASKS, TrainConfig, corpus, finetune, train

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # the runs behind RESULTS_DIR
# A learner's own retrain saves its weights to a per-user cache (the package may be read-only).
WEIGHTS_DIR = Path(os.environ.get("PE_LAB_WEIGHTS", Path.home() / ".cache" / "pe-course-lab"))
FINETUNED = ("rope+ft", "rope+pi+ft")
VARIANTS = SCHEMES + tuple(f"rope+{s}" for s in ROPE_SCALINGS) + FINETUNED
FT_FACTOR, FT_STEPS, FT_BATCH = 4, 200, 4  # fine-tune at 4L for 200 steps of 4 x 4L tokens
SEEDS = (0, 1, 2)  # every run is trained once per seed: the spread over seeds is the error bar
SHIPPED_SEED = 0  # the seed whose weights ship (the notebook's "inside the model" sections)
FORMAT = 2


def run_name(task: str, scheme: str, seed: int) -> str:
    return f"{task}_{scheme}_seed{seed}"


def result_path(task: str, scheme: str, directory: Path | None = None, seed: int = SHIPPED_SEED) -> Path:
    return Path(directory or RESULTS_DIR) / f"{run_name(task, scheme, seed)}.json"


def weights_digest(state: dict) -> str:
    """sha256 of a state dict's names and float32 values: which weights a record belongs to."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def default_config(task: str, scheme: str, seed: int = SHIPPED_SEED) -> TrainConfig:
    """The configuration the cached results were trained with."""
    return TrainConfig(task=task, scheme=scheme, seed=seed)


def run(task: str, scheme: str, config: TrainConfig | None = None, progress: bool = True,
        directory: Path | None = None, save: bool = True, seed: int = SHIPPED_SEED) -> dict:
    """Train one model, evaluate it, save the JSON record (and the weights, see WEIGHTS_DIR).

    A RoPE model is also evaluated with each test-time scaling, and twice more after a
    short fine-tuning at FT_FACTOR times the training length (plain, and with PI).
    A `config` brings its own seed.
    """
    cfg = config or default_config(task, scheme, seed)
    model, info = train(cfg, progress=progress)
    info["weights_sha256"] = weights_digest(model.state_dict())
    evals, extra = evaluate_all(model, cfg, progress)
    info.update(extra)
    record = {"format": FORMAT, "task": task, "scheme": scheme, "train": cfg.to_dict(),
              "model": cfg.model_config().to_dict(), "info": info, "eval": evals,
              "multiples": list(MULTIPLES),
              "environment": {"python": platform.python_version(), "torch": torch.__version__}}
    if task == "chars":
        record["corpus"] = {k: v for k, v in corpus()[2].items() if k != "modules"}
    if save:
        try:
            WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
            torch.save({"config": cfg.to_dict(), "state": model.state_dict()},
                       WEIGHTS_DIR / f"{run_name(task, scheme, cfg.seed)}.pt")
        except OSError as err:  # a read-only home is no reason to lose the results
            print(f"could not save the weights in {WEIGHTS_DIR} ({err}); load_model will give the shipped ones")
        _write(record, result_path(task, scheme, directory, cfg.seed))
    return record


def evaluate_all(model, cfg: TrainConfig, progress: bool = False) -> tuple[dict, dict]:
    """({variant: evaluation}, extra info) for a trained model: the model itself and, for
    RoPE, the test-time scalings and the two fine-tuned variants."""
    task, scheme = cfg.task, cfg.scheme
    heldout = corpus()[1] if task == "chars" else None
    extra = {}
    start = time.process_time()  # CPU time of one thread, see training.train
    evals = {scheme: evaluate(model, task, cfg.train_len, heldout)}
    if scheme == "rope":
        for method in ROPE_SCALINGS:
            model.rope_scaling = method
            evals[f"rope+{method}"] = evaluate(model, task, cfg.train_len, heldout)
        model.rope_scaling = None
    extra["eval_cpu_seconds"] = round(time.process_time() - start, 1)
    if scheme == "rope":
        # Chen et al.'s comparison in miniature: fine-tune briefly at FT_FACTOR x L, once
        # with plain RoPE (extrapolation) and once with position interpolation.
        extra["finetune"] = {}
        for name, method in (("rope+ft", None), ("rope+pi+ft", "pi")):
            tuned = copy.deepcopy(model)
            tuned.rope_scaling = method
            tuned.rope_factor = float(FT_FACTOR) if method else None
            ft_info = finetune(tuned, cfg, FT_FACTOR * cfg.train_len, FT_STEPS, FT_BATCH, progress=progress)
            extra["finetune"][name] = {"length": FT_FACTOR * cfg.train_len, "steps": FT_STEPS, "batch": FT_BATCH,
                                       **ft_info}
            evals[name] = evaluate(tuned, task, cfg.train_len, heldout)
    return evals, extra


def reevaluate(task: str, scheme: str, directory: Path | None = None, progress: bool = False,
               seed: int = SHIPPED_SEED) -> dict:
    """Evaluate a cached run again from its saved weights (after a change to the evaluation).

    Keeps the record's training information; needs the weights of that very run (see
    ``weights_path``). Training is deterministic on one machine, so the result is what a
    full retrain with the current evaluation code would give there.
    """
    path = result_path(task, scheme, directory, seed)
    record = json.loads(path.read_text())
    weights = weights_path(task, scheme, directory, seed)
    if weights is None:
        raise FileNotFoundError(f"no weights for {run_name(task, scheme, seed)} (looked in {WEIGHTS_DIR} and "
                                f"{SHIPPED_WEIGHTS_DIR}; only seed {SHIPPED_SEED} ships: retrain the others with "
                                f"python -m course.lab --retrain --seed {seed})")
    saved = torch.load(weights, weights_only=True)
    cfg = TrainConfig(**saved["config"])
    if {k: v for k, v in cfg.to_dict().items() if k in record["train"]} != record["train"]:
        raise ValueError(f"{weights} does not belong to {path}")
    model = TinyDecoder(cfg.model_config())
    model.load_state_dict(saved["state"])
    model.eval()
    record["eval"], extra = evaluate_all(model, cfg, progress)
    record["info"].update(extra)
    record["info"]["weights_sha256"] = weights_digest(saved["state"])
    record["train"] = cfg.to_dict()
    _write(record, path)
    return record


def _write(record: dict, path: Path) -> None:
    write_atomic(path, json.dumps(record, separators=(",", ":")) + "\n")  # a killed run leaves no half file


def weights_path(task: str, scheme: str, directory: Path | None = None, seed: int = SHIPPED_SEED) -> Path | None:
    """The weights behind the cached record of a run.

    The learner's own file in WEIGHTS_DIR when the record names exactly those weights (they
    retrained, and the tables show their run); otherwise the shipped file; None if neither
    exists. Without a record, the shipped file comes first.
    """
    name = f"{run_name(task, scheme, seed)}.pt"
    own, shipped = WEIGHTS_DIR / name, SHIPPED_WEIGHTS_DIR / name
    record = result_path(task, scheme, directory, seed)
    wanted = json.loads(record.read_text())["info"].get("weights_sha256") if record.exists() else None
    if wanted and own.exists() and own != shipped:
        try:
            if weights_digest(torch.load(own, weights_only=True)["state"]) == wanted:
                return own
        except Exception:  # noqa: BLE001 - a damaged or foreign file is simply not theirs
            pass
    return shipped if shipped.exists() else (own if own.exists() else None)


def load_model(task: str, scheme: str, train_if_missing: bool = False, directory: Path | None = None,
               seed: int = SHIPPED_SEED):
    """The trained model of a run (see ``weights_path``), in eval mode.

    Nothing is trained unless no weights exist at all and `train_if_missing` is set.
    """
    path = weights_path(task, scheme, directory, seed)
    if path is None:
        if not train_if_missing:
            return None
        cfg = default_config(task, scheme, seed)
        model, _ = train(cfg)
        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        torch.save({"config": cfg.to_dict(), "state": model.state_dict()},
                   WEIGHTS_DIR / f"{run_name(task, scheme, seed)}.pt")
        return model
    saved = torch.load(path, weights_only=True)
    model = TinyDecoder(TrainConfig(**saved["config"]).model_config())
    model.load_state_dict(saved["state"])
    return model.eval()


def load_results(directory: Path | None = None) -> dict:
    """{"recall": {variant: {seed: {length: metrics}}}, "chars": {...},
    "runs": {(task, scheme, seed): record}, "seeds": [the seeds found]}.

    Missing files are simply absent; see ``missing()``.
    """
    out = {task: {} for task in TASKS}
    out["runs"] = {}
    for task in TASKS:
        for scheme in SCHEMES:
            for seed in SEEDS:
                path = result_path(task, scheme, directory, seed)
                if not path.exists():
                    continue
                record = json.loads(path.read_text())
                out["runs"][(task, scheme, seed)] = record
                for variant, evaluation in record["eval"].items():
                    out[task].setdefault(variant, {})[seed] = evaluation
    out["seeds"] = sorted({seed for _, _, seed in out["runs"]})
    return out


def missing(directory: Path | None = None, seeds=SEEDS) -> list[tuple[str, str, int]]:
    return [(t, s, seed) for t in TASKS for s in SCHEMES for seed in seeds
            if not result_path(t, s, directory, seed).exists()]


def run_all(retrain: bool = False, tasks=TASKS, schemes=SCHEMES, progress: bool = True,
            directory: Path | None = None, seeds=SEEDS) -> dict:
    """Train what is missing (everything when `retrain`), then load every cached result."""
    todo = [(t, s, seed) for seed in seeds for t in tasks for s in schemes
            if retrain or not result_path(t, s, directory, seed).exists()]
    for task, scheme, seed in todo:
        run(task, scheme, progress=progress, directory=directory, seed=seed)
    return load_results(directory)
