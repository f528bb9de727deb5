"""llama2.c's style: ``precompute_freqs_cis(dim, end, theta) -> (freqs_cos, freqs_sin)``, each ``(end,
dim/2)``, and ``apply_rotary_emb(xq, xk, freqs_cos, freqs_sin)`` on ``(B, T, H, D)``, interleaved pairs."""
import torch

from course.adapting import from_layout, rope, table_rows, to_layout


def adapt(found: dict) -> dict:
    precompute_freqs_cis, apply_rotary_emb = found["precompute_freqs_cis"], found["apply_rotary_emb"]

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # every token its own row of the tables: (1, tokens, 1, D)
            rows, length = table_rows(y, positions, "freqs_cos and freqs_sin")
            cos, sin = (t.to(y.device)[rows.reshape(-1)] for t in precompute_freqs_cis(y.shape[-1], length, base))
            tokens = to_layout(y, "bthd", tokens=True)
            return from_layout(apply_rotary_emb(tokens, tokens, cos, sin)[0], "bthd", y)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        cos, sin = precompute_freqs_cis(d, 2, base)
        return torch.atan2(sin[1], cos[1])

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq}
