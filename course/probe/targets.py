"""What the probes run on: a *handle* around one model, with the same small interface for
every kind of target.

* ``hf_handle(name)``: a Hugging Face ``transformers`` architecture built from a tiny random
  config (no download), in this process.
* ``lab_handle("recall:rope")``: a model of the extrapolation lab (``course.lab``), with its
  trained weights (shipped in course/lab/weights/).
* ``course.probe.factory``: a learner's or engineer's ``file.py:factory`` (sandboxed).

A handle answers what it can and returns ``None`` (or leaves a capability out of
``accepts``) for the rest; the probes report "not applicable" with the reason.
"""
from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field

import torch

TINY = dict(vocab=96, hidden=32, heads=4, layers=1, length=32)  # train_len of the random models
INIT = 0.2  # weights' std: 10x the usual, so that random attention is far from uniform and errors show


class MissingExtra(RuntimeError):
    """transformers is not installed (it is the optional extra `probe`)."""


class Unusable(Exception):
    """The model answered, but not as its interface promises (a shape, a type): the probe fails, saying so."""


@dataclass
class Handle:
    """The interface every probe uses. Subclasses fill in what their model offers."""
    name: str
    vocab: int
    train_len: int
    scheme: str | None = None          # "rope", "alibi", "t5", "learned", "none", ... or None: undeclared
    trained: bool = False
    task: str | None = None            # the lab task a trained model knows ("recall", "chars")
    accepts: set = field(default_factory=set)  # of "position_ids", "attention_mask", "cache"
    sandboxed: bool = False
    notes: list = field(default_factory=list)
    attention_kind: str = "attention weights"   # what attention() returns: weights or pre-softmax scores
    unreachable: dict = field(default_factory=dict)  # "rope", "alibi" -> why the model's own says nothing usable

    def logits(self, ids, position_ids=None, attention_mask=None) -> torch.Tensor:
        raise NotImplementedError

    def attention(self, ids, position_ids=None):
        """First-layer attention (B, H, T, T) (weights or scores), or None if unreachable."""
        return None

    def cached_logits(self, prompt, continuation) -> torch.Tensor | None:
        """Logits (B, n, V) for each continuation token, fed one at a time after the prompt."""
        return None

    def rope_norms(self, ids):
        """(norms before, norms after) of every query and key the rotary step saw, or None."""
        return None

    def alibi_bias(self, T: int):
        """The score bias (H, T, T) the model adds (up to a constant per row), or None."""
        return None

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------
# Hugging Face transformers
# --------------------------------------------------------------------------------------

def _configs(transformers):
    V, D, H, L, T = (TINY[k] for k in ("vocab", "hidden", "heads", "layers", "length"))
    common = dict(vocab_size=V, hidden_size=D, intermediate_size=2 * D, num_hidden_layers=L,
                  num_attention_heads=H, max_position_embeddings=T, initializer_range=INIT)
    return {
        "llama": ("rope", lambda: transformers.LlamaConfig(num_key_value_heads=2, **common)),
        "mistral": ("rope", lambda: transformers.MistralConfig(num_key_value_heads=2, sliding_window=None, **common)),
        "qwen2": ("rope", lambda: transformers.Qwen2Config(num_key_value_heads=2, **common)),
        # rotary on half of each 8-dim head (Pythia: a quarter of 64 or more): two frequencies
        "gpt_neox": ("rope", lambda: transformers.GPTNeoXConfig(rotary_pct=0.5, **common)),
        # 12 heads: ALiBi's rule for a head count that is not a power of two
        "bloom": ("alibi", lambda: transformers.BloomConfig(vocab_size=V, hidden_size=48, n_layer=L, n_head=12,
                                                                  initializer_range=INIT)),
        "t5": ("t5", lambda: transformers.T5Config(vocab_size=V, d_model=D, d_kv=D // H, d_ff=2 * D, num_layers=L,
                                                   num_decoder_layers=L, num_heads=H,
                                                   relative_attention_num_buckets=8,
                                                   relative_attention_max_distance=16, decoder_start_token_id=0)),
        "gpt2": ("learned", lambda: transformers.GPT2Config(vocab_size=V, bos_token_id=0, eos_token_id=0, n_embd=D, n_layer=L, n_head=H, n_positions=T,
                                                         initializer_range=INIT)),
    }


def _transformers():
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise MissingExtra("probing a transformers model needs the optional extra: "
                           "pip install -e '.[probe]' (transformers==5.23.0)") from None


def hf_architectures() -> list[str]:
    return ["llama", "mistral", "qwen2", "gpt_neox", "bloom", "t5", "gpt2"]


def hf_handle(arch: str, seed: int = 0) -> "HFHandle":
    transformers = _transformers()
    table = _configs(transformers)
    if arch not in table:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(table)}")
    scheme, make = table[arch]
    config = make()
    config._attn_implementation = "eager"  # attention weights can be returned
    torch.manual_seed(seed)
    if arch == "t5":
        model = transformers.T5ForConditionalGeneration(config)
    else:
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model.eval()
    return HFHandle(arch, model, scheme)


class HFHandle(Handle):
    """A transformers model. T5 is probed through its decoder (a fixed 5-token encoder input)."""

    def __init__(self, arch: str, model, scheme: str):
        cfg = model.config
        length = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or TINY["length"]
        accepts = {"attention_mask", "cache"}
        if arch not in ("bloom", "t5"):
            accepts.add("position_ids")
        super().__init__(name=f"hf:{arch}", vocab=cfg.vocab_size, train_len=length, scheme=scheme, accepts=accepts)
        self.arch, self.model = arch, model
        self.modeling = importlib.import_module(type(model).__module__)
        if arch == "t5":
            self.notes.append("T5: the decoder is probed (encoder input fixed); its positions are implicit (no position_ids)")
        if arch == "bloom":
            self.notes.append("BLOOM: ALiBi is built from the attention mask; it takes no position_ids")
        self._enc = torch.arange(1, 6)[None]

    def _call(self, ids, **kw):
        kw = {k: v for k, v in kw.items() if v is not None}
        with torch.no_grad():
            if self.arch == "t5":
                if "attention_mask" in kw:
                    kw["decoder_attention_mask"] = kw.pop("attention_mask")
                enc = self._enc.expand(ids.shape[0], -1)
                return self.model(input_ids=enc, decoder_input_ids=ids, **kw)
            return self.model(input_ids=ids, **kw)

    def logits(self, ids, position_ids=None, attention_mask=None):
        return self._call(ids, position_ids=position_ids, attention_mask=attention_mask).logits.float()

    def attention(self, ids, position_ids=None):
        out = self._call(ids, position_ids=position_ids, output_attentions=True)
        att = out.decoder_attentions if self.arch == "t5" else out.attentions
        return att[0].float() if att else None

    def cached_logits(self, prompt, continuation):
        out = self._call(prompt, use_cache=True)
        past, steps = out.past_key_values, []
        for t in range(continuation.shape[1]):
            out = self._call(continuation[:, t: t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            steps.append(out.logits[:, -1].float())
        return torch.stack(steps, 1)

    def rope_norms(self, ids):
        original = getattr(self.modeling, "apply_rotary_pos_emb", None)
        if original is None or self.scheme != "rope":
            return None
        seen = []

        def recording(q, k, *args, **kwargs):
            q2, k2 = original(q, k, *args, **kwargs)
            seen.append((torch.cat([q.norm(dim=-1).flatten(), k.norm(dim=-1).flatten()]),
                         torch.cat([q2.norm(dim=-1).flatten(), k2.norm(dim=-1).flatten()])))
            return q2, k2

        self.modeling.apply_rotary_pos_emb = recording
        try:
            self.logits(ids)
        finally:
            self.modeling.apply_rotary_pos_emb = original
        if not seen:
            return None
        # cos and sin carry the rotary embedding's attention factor (1 unless YaRN-like scaling)
        scale = float(getattr(getattr(self.model.base_model, "rotary_emb", None), "attention_scaling", 1.0) or 1.0)
        return torch.cat([a for a, _ in seen]).double(), torch.cat([b for _, b in seen]).double() / scale

    def alibi_bias(self, T):
        if self.arch != "bloom":
            return None
        H = self.model.config.n_head
        row = self.model.transformer.build_alibi_tensor(torch.ones(1, T, dtype=torch.long), H, torch.float32)
        row = row.view(H, T).double()  # slope_h * key position: a constant per query row away from -m (i - j)
        return row[:, None, :] - row[:, :, None]  # [h, i, j] = m_h (j - i) = -m_h (i - j)


# --------------------------------------------------------------------------------------
# The extrapolation lab's models (trusted course code, in this process)
# --------------------------------------------------------------------------------------

def lab_handle(spec: str, model=None) -> "LabHandle":
    """`spec` is TASK:SCHEME (e.g. recall:rope). Without `model`, the trained weights are
    loaded (course.lab.cache.load_model); nothing is ever trained here."""
    from course.lab import cache
    from course.lab.model import SCHEMES
    from course.lab.training import TASKS

    task, _, scheme = spec.partition(":")
    if task not in TASKS or scheme not in SCHEMES:
        raise ValueError(f"--lab takes TASK:SCHEME with TASK in {TASKS} and SCHEME in {SCHEMES}, got {spec!r}")
    trained = model is None
    if model is None:
        model = cache.load_model(task, scheme, train_if_missing=False)
        if model is None:
            raise FileNotFoundError(f"no trained weights for {spec}: neither shipped in course/lab/weights/ nor in "
                                    f"{cache.WEIGHTS_DIR}; train them with "
                                    f"python -m course.lab --retrain --task {task} --scheme {scheme}")
    return LabHandle(spec, model.eval(), task, trained)


class LabHandle(Handle):
    """course.lab.TinyDecoder: forward(tokens) only (no position ids, mask or cache)."""

    def __init__(self, spec, model, task, trained):
        super().__init__(name=f"lab:{spec}", vocab=model.cfg.vocab_size, train_len=model.cfg.train_len,
                         scheme=model.cfg.scheme, trained=trained, task=task)
        self.model = model
        if not trained:
            self.notes.append("untrained weights (given directly, not from the cache)")

    def logits(self, ids, position_ids=None, attention_mask=None):
        with torch.no_grad():
            return self.model(ids).float()

    def attention(self, ids, position_ids=None):
        attn = self.model.blocks[0].attn
        attn.keep_weights = True
        try:
            self.logits(ids)
            return attn.last_weights
        finally:
            attn.keep_weights = False

    def rope_norms(self, ids):
        if self.scheme != "rope":
            return None
        from course.lab import model as lab_model
        original, seen = lab_model.rotate_half_split, []

        def recording(x, cos, sin):
            y = original(x, cos, sin)
            seen.append((x.norm(dim=-1).flatten(), y.norm(dim=-1).flatten()))
            return y

        lab_model.rotate_half_split = recording
        try:
            self.logits(ids)
        finally:
            lab_model.rotate_half_split = original
        return torch.cat([a for a, _ in seen]).double(), torch.cat([b for _, b in seen]).double()

    def alibi_bias(self, T):
        if self.scheme != "alibi":
            return None
        _, bias = self.model.position_signals(T, torch.device("cpu"))
        return bias.double()


@contextlib.contextmanager
def patched(obj, attr, value):
    """Set obj.attr = value for the duration (used by tests to break a model on purpose)."""
    old = getattr(obj, attr)
    setattr(obj, attr, value)
    try:
        yield
    finally:
        setattr(obj, attr, old)
