"""gpt-fast's style: ``precompute_freqs_cis(seq_len, n_elem, base[, dtype])`` -> ``(seq_len, n_elem/2, 2)``
(cos, sin), ``apply_rotary_emb(x, freqs_cis)`` on ``(B, T, H, D)`` with interleaved pairs, one table row per
token; ``apply_rope_scaling(freqs, rope_scaling)``, Llama 3.1's scaling. `found` holds the rope names, or
apply_rope_scaling, or both. gpt-fast's table is bfloat16 unless asked otherwise: it is asked for float32
(the accuracy the contract holds apply_rope to) when precompute_freqs_cis takes `dtype`."""
import inspect

import torch

from course.adapting import from_layout, rope, table_rows, to_layout, unscaled_inv_freq


def _table_maker(precompute_freqs_cis):
    try:
        takes_dtype = "dtype" in inspect.signature(precompute_freqs_cis).parameters
    except (TypeError, ValueError):
        takes_dtype = False
    if takes_dtype:
        return lambda length, d, base: precompute_freqs_cis(length, d, base, dtype=torch.float32)
    return precompute_freqs_cis


def _rope(precompute_freqs_cis, apply_rotary_emb) -> dict:
    table = _table_maker(precompute_freqs_cis)

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # every token its own row of freqs_cis: (1, tokens, 1, D)
            rows, length = table_rows(y, positions, "freqs_cis")
            freqs_cis = table(length, y.shape[-1], base).to(y.device)[rows.reshape(-1)]
            return from_layout(apply_rotary_emb(to_layout(y, "bthd", tokens=True), freqs_cis), "bthd", y)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        row = table(2, d, base)[1]
        return torch.atan2(row[..., 1], row[..., 0])

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq}


def adapt(found: dict) -> dict:
    made = _rope(found["precompute_freqs_cis"], found["apply_rotary_emb"]) if "apply_rotary_emb" in found else {}
    if "apply_rope_scaling" not in found:
        return made
    apply_rope_scaling = found["apply_rope_scaling"]

    def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
        return apply_rope_scaling(unscaled_inv_freq(d, base), {
            "factor": factor, "low_freq_factor": low_freq_factor, "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_len})

    return {**made, "llama3_inv_freq": llama3_inv_freq}
