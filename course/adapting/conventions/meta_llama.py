"""Meta's Llama style: ``precompute_freqs_cis(dim, end, theta)`` (a complex table, one row per
position) and ``apply_rotary_emb(xq, xk, freqs_cis)`` on ``(B, T, H, D)``, interleaved pairs."""
from course.adapting import from_layout, rope, table_rows, to_layout


def adapt(found: dict) -> dict:
    precompute_freqs_cis, apply_rotary_emb = found["precompute_freqs_cis"], found["apply_rotary_emb"]

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # every token its own row of freqs_cis: (1, tokens, 1, D)
            rows, length = table_rows(y, positions, "freqs_cis")
            freqs_cis = precompute_freqs_cis(y.shape[-1], length, base).to(y.device)[rows.reshape(-1)]
            tokens = to_layout(y, "bthd", tokens=True)
            return from_layout(apply_rotary_emb(tokens, tokens, freqs_cis)[0], "bthd", y)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        return precompute_freqs_cis(d, 2, base)[1].angle()

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq}
