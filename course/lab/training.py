"""Training one tiny model on one task, on CPU, with a progress bar."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from course.lab import tasks
from course.lab.model import ModelConfig, TinyDecoder

TASKS = ("recall", "chars")


@dataclass
class TrainConfig:
    task: str = "recall"
    scheme: str = "rope"
    train_len: int = 64
    steps: int = 1500
    batch: int = 16
    lr: float = 3e-3
    warmup: int = 100
    seed: int = 0
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 128
    max_len: int = 1024
    rope_base: float = 10000.0
    t5_max_distance: int = 32

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    def model_config(self) -> ModelConfig:
        vocab = tasks.RECALL_VOCAB if self.task == "recall" else tasks.CHAR_VOCAB
        return ModelConfig(vocab_size=vocab, scheme=self.scheme, d_model=self.d_model, n_heads=self.n_heads,
                           n_layers=self.n_layers, d_ff=self.d_ff, train_len=self.train_len, max_len=self.max_len,
                           rope_base=self.rope_base, t5_max_distance=self.t5_max_distance)

    def to_dict(self) -> dict:
        return asdict(self)


_CORPUS = None


def corpus():
    """(train ids, held-out ids, info) of the character corpus, read once per process."""
    global _CORPUS
    if _CORPUS is None:
        _CORPUS = tasks.char_corpus()
    return _CORPUS


def batch_for(cfg: TrainConfig, generator: torch.Generator, length: int | None = None, batch: int | None = None):
    length, batch = length or cfg.train_len, batch or cfg.batch
    if cfg.task == "recall":
        return tasks.recall_batch(batch, length, generator)
    return tasks.char_batch(corpus()[0], batch, length, generator)


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(cfg: TrainConfig, progress: bool = True, log_every: int = 50):
    """Train a fresh model; return (model, info) with the loss curve and the CPU time.

    Single-threaded on purpose (the lab should not take over a shared machine); the
    progress bar shows the running loss. The time is the process's CPU time, which on one
    thread is what the run takes on an idle core, however busy the machine was.
    """
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = TinyDecoder(cfg.model_config())
    info = _fit(model, cfg, generator, cfg.steps, cfg.train_len, cfg.batch, cfg.lr, cfg.warmup,
                f"{cfg.task:>6} · {cfg.scheme:<10}", progress, log_every)
    return model, info


def finetune(model: TinyDecoder, cfg: TrainConfig, length: int, steps: int = 200, batch: int = 4,
             lr: float = 1e-3, progress: bool = True, log_every: int = 10) -> dict:
    """Continue training `model` (in place) on sequences of `length`, as it is set up now.

    With ``model.rope_scaling = "pi"`` and ``model.rope_factor = length / train_len`` this
    is Chen et al.'s recipe: interpolate, then fine-tune briefly at the new length. Same
    number of tokens per step as pre-training when batch * length = cfg.batch * train_len.
    """
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    label = f"{cfg.task:>6} · fine-tune {model.rope_scaling or 'plain'} at {length}"
    info = _fit(model, cfg, generator, steps, length, batch, lr, max(1, steps // 10), label, progress, log_every)
    return info


def _fit(model, cfg, generator, steps, length, batch, peak_lr, warmup, label, progress, log_every) -> dict:
    model.train()
    opt = Adam(model.parameters())
    curve, running = [], None
    start = time.process_time()
    with _Bar(label, steps, enabled=progress) as bar:
        for step in range(steps):
            tokens, targets = batch_for(cfg, generator, length, batch)
            logits = model(tokens)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=tasks.IGNORE)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(lr_at(step, steps, peak_lr, warmup))
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            if step % log_every == 0 or step == steps - 1:
                curve.append([step, round(running, 4)])
            bar.advance(f"loss {running:.3f}")
    seconds = time.process_time() - start
    model.eval()
    return {"loss_curve": curve, "train_cpu_seconds": round(seconds, 1), "n_params": model.n_params()}


class Adam:
    """Adam (Kingma and Ba), written out in a few lines; no weight decay, so the learned
    table's rows past the training length keep their initial values (9.10 shows them).

    The first torch.optim optimizer of a process imports torch._dynamo, which can take
    longer than a whole test run here; this one does not.
    """

    def __init__(self, params, betas=(0.9, 0.98), eps=1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float):
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1 ** self.t))


class _Bar:
    """A rich progress bar (or nothing), advanced once per step."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.enabled, self.label, self.total = enabled, label, total

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
            self.progress.__enter__()
            self.task = self.progress.add_task(self.label, total=self.total, info="")
        return self

    def advance(self, info: str):
        if self.enabled:
            self.progress.update(self.task, advance=1, info=info)

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)
