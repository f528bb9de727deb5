"""A correct section 2 written another way: torch.where, explicit any() checks, outer differences."""
import torch


def relative_positions(q_pos, k_pos):
    if q_pos.ndim != 1:
        raise ValueError("q_pos must be 1-D")
    if k_pos.ndim != 1:
        raise ValueError("k_pos must be 1-D")
    return q_pos.unsqueeze(1).to(torch.int64) - k_pos.unsqueeze(0).to(torch.int64)


def position_ids_from_mask(attention_mask):
    if attention_mask.ndim != 2:
        raise ValueError("attention_mask must be (B, T)")
    real = attention_mask != 0
    counts = real.to(torch.int64).cumsum(dim=1) - 1
    return torch.where(real, counts, torch.zeros_like(counts))


def next_position_ids(attention_mask, n_new=1):
    if n_new < 1:
        raise ValueError("n_new must be positive")
    if attention_mask.ndim != 2:
        raise ValueError("attention_mask must be (B, T)")
    n = (attention_mask != 0).sum(dim=1, keepdim=True).to(torch.int64)
    return n + torch.arange(n_new, device=attention_mask.device).unsqueeze(0)


def add_positions(x, table, position_ids=None):
    L, d = table.shape
    if d != x.shape[-1]:
        raise ValueError("table width must equal d")
    if position_ids is None:
        position_ids = torch.arange(x.shape[1])
    if bool(((position_ids < 0) | (position_ids >= L)).any()):
        raise ValueError(f"position ids must be in [0, L) with L = {L}")
    pe = table[position_ids]
    return (x.float() + pe.float()).to(x.dtype) if x.dtype != torch.float64 else x + pe.double()


def interpolated_positions(positions, train_len, target_len):
    if train_len < 1:
        raise ValueError("train_len must be >= 1")
    if target_len < 1:
        raise ValueError("target_len must be >= 1")
    out = positions.double() if positions.dtype == torch.float64 else positions.float()
    if target_len > train_len:
        out = out * (train_len / target_len)
    return out
