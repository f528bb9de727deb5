"""Section 2 with TorchScript kernels: each computation is a torch.jit.script function,
called by a small Python wrapper that validates arguments with Python ints (a `raise`
inside a scripted function would surface as torch.jit.Error, not ValueError)."""
from typing import Optional

import torch


@torch.jit.script
def _offsets(q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    return q_pos.long().unsqueeze(1) - k_pos.long().unsqueeze(0)


def relative_positions(q_pos, k_pos):
    if q_pos.dim() != 1 or k_pos.dim() != 1:
        raise ValueError(f"need 1-D q_pos and k_pos, got {tuple(q_pos.shape)} and {tuple(k_pos.shape)}")
    return _offsets(q_pos, k_pos)


@torch.jit.script
def _ids(mask: torch.Tensor) -> torch.Tensor:
    real = (mask != 0).long()
    return real.cumsum(1).sub(1).clamp(min=0) * real


def position_ids_from_mask(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask has to be (B, T)")
    return _ids(attention_mask)


@torch.jit.script
def _next(mask: torch.Tensor, n_new: int) -> torch.Tensor:
    n = (mask != 0).long().sum(1, keepdim=True)
    return n + torch.arange(n_new, device=mask.device).unsqueeze(0)


def next_position_ids(attention_mask, n_new=1):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask has to be (B, T)")
    if int(n_new) < 1:
        raise ValueError("n_new has to be 1 or more")
    return _next(attention_mask, int(n_new))


@torch.jit.script
def _add(x: torch.Tensor, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.float64:
        return x + table[ids].to(torch.float64)
    return (x.float() + table[ids].float()).to(x.dtype)


def add_positions(x, table, position_ids: Optional[torch.Tensor] = None):
    if table.dim() != 2 or table.shape[1] != x.shape[-1]:
        raise ValueError("shape mismatch between table (L, d) and x (B, T, d)")
    L = int(table.shape[0])
    ids = torch.arange(x.shape[-2], device=table.device) if position_ids is None else position_ids.long()
    if ids.numel():
        lo, hi = int(ids.min().item()), int(ids.max().item())
        if lo < 0 or hi >= L:
            raise ValueError(f"ids range over [{lo}, {hi}] but the table holds L={L} positions")
    return _add(x, table, ids)


@torch.jit.script
def _squeeze(p: torch.Tensor, train_len: int, target_len: int) -> torch.Tensor:
    p = p.double() if p.dtype == torch.float64 else p.float()
    if target_len > train_len:
        p = p * (float(train_len) / float(target_len))
    return p


def interpolated_positions(positions, train_len, target_len):
    if int(train_len) < 1:
        raise ValueError("train_len < 1")
    if int(target_len) < 1:
        raise ValueError("target_len < 1")
    return _squeeze(torch.as_tensor(positions), int(train_len), int(target_len)).clone()
