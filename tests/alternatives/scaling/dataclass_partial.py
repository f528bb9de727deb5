"""Context scaling organised like a model config: a frozen dataclass per rope type with a
`inv_freq()` method, the graded functions as thin constructors (functools.partial binds
the shared ladder builder), validation in __post_init__, and YaRN returning a NamedTuple
(inv_freq, attention_factor). Ladders are float64 torch, rounded to float32 once."""
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch


def _ladder(d, base, dtype=torch.float64):
    if d % 2 or d < 2:
        raise ValueError(f"d={d} is not a positive even number")
    return torch.pow(torch.tensor(float(base), dtype=torch.float64),
                     -torch.arange(0, d, 2, dtype=torch.float64) / d).to(dtype)


@dataclass(frozen=True)
class RopeScaling:
    d: int
    base: float
    factor: float

    def __post_init__(self):
        if self.factor < 1:
            raise ValueError(f"factor={self.factor} is below 1")

    @property
    def ladder(self):
        return functools.partial(_ladder, self.d)


@dataclass(frozen=True)
class Linear(RopeScaling):
    def inv_freq(self):
        return (self.ladder(self.base) / self.factor).float()


@dataclass(frozen=True)
class DynamicNTK(RopeScaling):
    seq_len: int = 1
    original_max_len: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.d <= 2:
            raise ValueError(f"d={self.d}: the exponent d/(d-2) needs d > 2")
        if self.seq_len < 1:
            raise ValueError(f"seq_len={self.seq_len} is below 1")
        if self.original_max_len < 1:
            raise ValueError(f"original_max_len={self.original_max_len} is below 1")

    def inv_freq(self):
        s = max(self.seq_len, self.original_max_len)
        stretch = self.factor * s / self.original_max_len - (self.factor - 1)
        return self.ladder(self.base * stretch ** (self.d / (self.d - 2))).float()


class YarnResult(NamedTuple):
    inv_freq: torch.Tensor
    attention_factor: float


@dataclass(frozen=True)
class Yarn(RopeScaling):
    original_max_len: int = 1
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    truncate: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.original_max_len < 1:
            raise ValueError(f"original_max_len={self.original_max_len} is below 1")

    def _correction_dim(self, rotations):
        return self.d * math.log(self.original_max_len / (rotations * 2 * math.pi)) / (2 * math.log(self.base))

    def inv_freq(self):
        low, high = self._correction_dim(self.beta_fast), self._correction_dim(self.beta_slow)
        if self.truncate:
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, self.d - 1)
        if low == high:
            high += 0.001
        theta = self.ladder(self.base)
        ramp = torch.clamp((torch.arange(self.d // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
        blended = theta - ramp * (theta - theta / self.factor)
        mscale = 1.0 if self.factor <= 1 else 1.0 + 0.1 * math.log(self.factor)
        return YarnResult(blended.float(), mscale)


@dataclass(frozen=True)
class Llama3(RopeScaling):
    original_max_len: int = 8192
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0

    def __post_init__(self):
        super().__post_init__()
        if self.original_max_len < 1:
            raise ValueError(f"original_max_len={self.original_max_len} is below 1")

    def inv_freq(self):
        theta = self.ladder(self.base)
        wavelen = 2 * math.pi / theta
        short = wavelen < self.original_max_len / self.high_freq_factor
        long_ = wavelen > self.original_max_len / self.low_freq_factor
        smooth = (self.original_max_len / wavelen - self.low_freq_factor) / (self.high_freq_factor - self.low_freq_factor)
        mid = (1 - smooth) * theta / self.factor + smooth * theta
        return torch.where(short, theta, torch.where(long_, theta / self.factor, mid)).float()


def linear_scaled_inv_freq(d, base, factor):
    return Linear(d, base, factor).inv_freq()


def ntk_scaled_base(base, factor, d):
    if d <= 2:
        raise ValueError(f"d={d}: the exponent d/(d-2) needs d > 2")
    if factor < 1:
        raise ValueError(f"factor={factor} is below 1")
    return float(base) * float(factor) ** (d / (d - 2))


def dynamic_ntk_inv_freq(d, base, factor, seq_len, original_max_len):
    return DynamicNTK(d, base, factor, seq_len, original_max_len).inv_freq()


def yarn_inv_freq(d, base, factor, original_max_len, beta_fast=32.0, beta_slow=1.0, truncate=True):
    return Yarn(d, base, factor, original_max_len, beta_fast, beta_slow, truncate).inv_freq()


def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
    return Llama3(d, base, factor, original_max_len, low_freq_factor, high_freq_factor).inv_freq()
