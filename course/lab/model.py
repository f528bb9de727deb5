"""A tiny decoder-only transformer with a pluggable position scheme.

Every scheme of the course in one compact, self-contained form (no import from the
notebooks or from ``solutions/``):

=============  =====================================  ===================================
scheme         where position enters                  beyond the training length
=============  =====================================  ===================================
``none``       nowhere (NoPE): only the causal mask   nothing changes
``sinusoidal`` added to the token embeddings          new rows of a fixed formula
``learned``    added to the token embeddings          rows never trained (kept at init)
``t5``         learned bias per log-bucket of offset  far offsets share the last bucket
``rope``       rotates queries and keys               angles never seen in training
``alibi``      bias -m_h * (i - j) on the scores      the same straight line, further
=============  =====================================  ===================================

A RoPE model can also be *run* with a scaled frequency table (``model.rope_scaling``):
position interpolation ("pi"), NTK-aware base scaling ("ntk"), YaRN ("yarn") or Llama
3.1's rule ("llama3"). The factor is chosen per call from the sequence length,
s = max(1, T / train_len), so at or below the training length the scaled model is
exactly the plain RoPE model; setting ``model.rope_factor`` fixes s instead (as after
fine-tuning for a longer window).

``model.signals`` replaces the built-in position signals by other code (``course.lab.plug``
runs a trained model with a learner's own RoPE, ALiBi or scaling functions).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

SCHEMES = ("none", "sinusoidal", "learned", "t5", "rope", "alibi")
ROPE_SCALINGS = ("pi", "ntk", "yarn", "llama3")


@dataclass
class ModelConfig:
    vocab_size: int
    scheme: str = "rope"
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 128
    train_len: int = 64        # the length the model is trained at
    max_len: int = 1024        # longest sequence the absolute tables cover
    rope_base: float = 10000.0
    t5_buckets: int = 32
    t5_max_distance: int = 32
    tie_embeddings: bool = True  # output layer = token embedding (helps copying)
    sinusoidal_scale: float = 0.03  # about the size of the token embeddings (init std 0.02)

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError("d_model / n_heads must be an even integer")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Position pieces
# ---------------------------------------------------------------------------------------

def sinusoidal_table(length: int, d: int) -> torch.Tensor:
    """(length, d): PE[p, 2k] = sin(p / 10000^(2k/d)), PE[p, 2k+1] = cos(...)."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    table = torch.zeros(length, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table.float()


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (Press et al. 2022), for any head count."""
    def geometric(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    closest = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = geometric(closest) + geometric(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes)


def t5_bucket(distance: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Causal T5 buckets for distance = query - key >= 0 (keys after the query: bucket 0).

    Half the buckets are exact (distances 0 .. n/2 - 1), the rest log-spaced up to
    max_distance; every distance from max_distance on shares the last bucket.
    """
    distance = distance.clamp(min=0)
    exact = num_buckets // 2
    scaled = torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
    far = (exact + (scaled * (num_buckets - exact)).long()).clamp(max=num_buckets - 1)
    return torch.where(distance < exact, distance, far)


def rope_inv_freq(head_dim: int, base: float) -> torch.Tensor:
    """RoPE's ladder base^(-2k/d), float64, (d/2,)."""
    return float(base) ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


def scaled_rope_table(head_dim: int, base: float, method: str | None, factor: float, train_len: int):
    """(inv_freq (d/2,) float64, attention factor) of RoPE scaled by `factor`.

    pi:   every frequency / factor (Chen et al. 2023).
    ntk:  base * factor^(d/(d-2)) (NTK-aware scaling; with factor = T / train_len chosen per
          call this is dynamic NTK).
    yarn: NTK-by-parts with beta_fast=32, beta_slow=1 and the attention factor
          0.1 ln(factor) + 1 on cos and sin (Peng et al. 2023).
    llama3: Llama 3.1's rule with low_freq_factor 1, high_freq_factor 4 and train_len as the
          original context: pairs whose wavelength is under train_len / 4 keep their
          frequency, pairs with a wavelength over train_len are divided by factor, a
          blend in between; no attention factor.
    At factor 1 every method returns the plain table and attention factor 1.
    """
    inv_freq = rope_inv_freq(head_dim, base)
    if method is None or factor <= 1.0:
        return inv_freq, 1.0
    if method == "pi":
        return inv_freq / factor, 1.0
    if method == "ntk":
        return rope_inv_freq(head_dim, base * factor ** (head_dim / (head_dim - 2))), 1.0
    if method == "yarn":
        def pair_with_turns(turns):
            return head_dim * math.log(train_len / (turns * 2 * math.pi)) / (2 * math.log(base))

        low = max(math.floor(pair_with_turns(32.0)), 0)
        high = min(math.ceil(pair_with_turns(1.0)), head_dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(head_dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        return inv_freq * (1 - ramp) + inv_freq / factor * ramp, 0.1 * math.log(factor) + 1.0
    if method == "llama3":
        low_freq_factor, high_freq_factor = 1.0, 4.0
        wavelength = 2 * math.pi / inv_freq
        smooth = ((train_len / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)).clamp(0, 1)
        return inv_freq * smooth + inv_freq / factor * (1 - smooth), 1.0
    raise ValueError(f"rope scaling must be one of {ROPE_SCALINGS} or None, got {method!r}")


def rotate_half_split(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (k, k + d/2) of x (..., T, d) by angles with cos, sin of shape (T, d/2)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        if cfg.scheme == "t5":
            self.t5_table = nn.Parameter(torch.zeros(cfg.t5_buckets, cfg.n_heads))

    def forward(self, x: torch.Tensor, rope, bias: torch.Tensor | None):
        """rope: None, the built-in (cos, sin), or any function rotating x (B, H, T, dh)."""
        B, T, _ = x.shape
        H, dh = self.cfg.n_heads, self.cfg.head_dim
        q, k, v = self.qkv(x).view(B, T, 3, H, dh).permute(2, 0, 3, 1, 4)  # each (B, H, T, dh)
        if callable(rope):
            q, k = rope(q), rope(k)
        elif rope is not None:
            cos, sin = rope
            q, k = rotate_half_split(q, cos, sin), rotate_half_split(k, cos, sin)
        if self.cfg.scheme == "t5":
            bias = self.t5_table[bias].permute(2, 0, 1)  # bucket ids -> (H, T, T) learned bias
        if getattr(self, "keep_weights", False):  # slow path that keeps the attention map
            scores = q @ k.transpose(-1, -2) / math.sqrt(dh)  # (B, H, T, T)
            if bias is not None:
                scores = scores + bias
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
            self.last_weights = weights.detach()
            self.last_qk = (q.detach(), k.detach())  # after the rotation, if any
            y = weights @ v
        elif bias is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.masked_fill(~causal, float("-inf")))
        y = y.transpose(1, 2).reshape(B, T, -1)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))

    def forward(self, x, rope, bias):
        x = x + self.attn(self.ln1(x), rope, bias)  # pre-norm: normalise, transform, add back
        return x + self.mlp(self.ln2(x))


class TinyDecoder(nn.Module):
    """Decoder-only, pre-norm transformer. forward(tokens (B, T)) -> logits (B, T, vocab)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.tok.weight, std=0.02)
        if cfg.scheme == "learned":
            # max_len rows, of which only the first train_len ever receive a gradient:
            # the rest keep their initial values, which is what "extrapolating" a learned
            # table means (GPT-2 would refuse positions past its table instead).
            self.pos = nn.Parameter(torch.randn(cfg.max_len, cfg.d_model) * 0.02)
        if cfg.scheme == "sinusoidal":
            self.register_buffer("pos", sinusoidal_table(cfg.max_len, cfg.d_model) * cfg.sinusoidal_scale, persistent=False)
        if cfg.scheme == "alibi":
            self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.tok.weight
        self.rope_scaling: str | None = None  # one of ROPE_SCALINGS: applied at run time only
        self.rope_factor: float | None = None  # None: s = max(1, T / train_len) per call; else fixed s
        self.signals = None  # None, or a function (model, T, device) -> (rope, bias) used instead of the built-in

    def position_signals(self, T: int, device) -> tuple[tuple | None, torch.Tensor | None]:
        """The per-call RoPE (cos, sin) and score bias (or T5 bucket ids) for length T."""
        if self.signals is not None:
            return self.signals(self, T, device)
        cfg = self.cfg
        pos = torch.arange(T, device=device)
        distance = pos[:, None] - pos[None, :]  # query - key, >= 0 where the mask allows
        if cfg.scheme == "rope":
            factor = self.rope_factor or max(1.0, T / cfg.train_len)
            inv_freq, mscale = scaled_rope_table(cfg.head_dim, cfg.rope_base, self.rope_scaling, factor, cfg.train_len)
            angles = pos.double()[:, None] * inv_freq.to(device)
            return (mscale * angles.cos().float(), mscale * angles.sin().float()), None
        if cfg.scheme == "alibi":
            return None, -self.slopes[:, None, None] * distance.clamp(min=0).float()
        if cfg.scheme == "t5":
            return None, t5_bucket(distance, cfg.t5_buckets, cfg.t5_max_distance)
        return None, None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B, T = tokens.shape
        if T > self.cfg.max_len and self.cfg.scheme in ("learned", "sinusoidal"):
            raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len}")
        if self.rope_scaling is not None and self.cfg.scheme != "rope":
            raise ValueError("rope_scaling only applies to the rope scheme")
        x = self.tok(tokens)
        if self.cfg.scheme in ("learned", "sinusoidal"):
            x = x + self.pos[:T]
        rope, bias = self.position_signals(T, tokens.device)
        for block in self.blocks:
            x = block(x, rope, bias)
        return self.head(self.ln_f(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
