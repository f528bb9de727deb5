"""Section 2 read literally from the contract's return types: relative offsets as a
LongTensor via torch.outer-free broadcasting of .long() vectors, and interpolated positions
as a FloatTensor, i.e. float32 (`.float()`), whatever the positions' dtype; the squeeze is
torch.mul by the Python ratio train_len / target_len."""
import torch


def relative_positions(q_pos, k_pos):
    if q_pos.dim() != 1:
        raise ValueError(f"q_pos must be 1-D (got shape {tuple(q_pos.shape)})")
    if k_pos.dim() != 1:
        raise ValueError(f"k_pos must be 1-D (got shape {tuple(k_pos.shape)})")
    return q_pos.long().view(-1, 1) - k_pos.long().to(q_pos.device).view(1, -1)


def interpolated_positions(positions, train_len, target_len):
    if train_len < 1:
        raise ValueError(f"train_len must be positive, got {train_len}")
    if target_len < 1:
        raise ValueError(f"target_len must be positive, got {target_len}")
    positions = torch.as_tensor(positions).float()
    if target_len > train_len:
        return torch.mul(positions, train_len / target_len)
    return positions.clone()
