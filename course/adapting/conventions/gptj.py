"""GPT-J style: ``create_sinusoidal_positions(num_pos, dim)`` (a [sin | cos] table, base 10000),
``rotate_every_two(x)``, ``apply_rotary_pos_emb(tensor, sin, cos)`` on ``(B, T, H, D)`` with sin and cos
``(B, T, dim/2)``, pairs (2k, 2k+1). Partial rotary is GPT-J's attention's: a table over the rotary width
for the first features, the rest passed through."""
import torch

from course.adapting import from_layout, in_float32, rope, table_rows, to_layout

BASE = 10000.0


def adapt(found: dict) -> dict:
    table, apply_rotary_pos_emb = found["create_sinusoidal_positions"], found["apply_rotary_pos_emb"]

    def fixed(base):
        if float(base) != BASE:
            raise ValueError(f"base must be {BASE:g}: create_sinusoidal_positions fixes it, got base={base}")

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        fixed(base)

        def turn(y):  # every token its own row: (1, tokens, 1, r)
            rows, length = table_rows(y, positions, "create_sinusoidal_positions")
            sin, cos = table(max(length, 2), y.shape[-1]).to(y.device)[rows.reshape(-1)].chunk(2, dim=-1)
            tokens = to_layout(y, "bthd", tokens=True)
            return from_layout(apply_rotary_pos_emb(tokens, sin[None], cos[None]), "bthd", y)
        return rope(x, lambda y: in_float32(turn, y), native_interleaved=True, interleaved=interleaved,
                    rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        fixed(base)
        row = table(2, d)[1]
        return torch.atan2(row[: d // 2], row[d // 2:]).float()

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq}
