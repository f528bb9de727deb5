"""lucidrains' rotary-embedding-torch: ``RotaryEmbedding(dim, theta=, interpolate_factor=,
theta_rescale_factor=)`` whose ``forward(positions)`` returns angles (each repeated for its pair (2k,
2k+1)), ``rotate_queries_with_cached_keys(q, k)`` (queries are the last of the keys' positions), and
``apply_rotary_emb(freqs, t)`` rotating the first ``freqs.shape[-1]`` features of t. Its class shadows the
course's RotaryEmbedding: here it is the library's, found by its signature. Angles come from float32
positions (its ``rotate_queries_or_keys`` makes them in t's dtype: float16 rounds positions past 2048)."""
import torch

from course.adapting import in_float32, pairing, positions_like, rope


def adapt(found: dict) -> dict:
    library, apply_rotary_emb = found["RotaryEmbedding"], found["apply_rotary_emb"]

    def rotated(module, x, positions, width):
        """x (..., T, D) through apply_rotary_emb with the module's angles at each token's position"""
        angles = library.forward(module, positions_like(x, positions).reshape(-1).float())[:, :width]
        return apply_rotary_emb(angles, x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):  # rotary width 2: its NTK rescale divides by dim - 2, and pair 0's frequency is 1 at any dim
            r = y.shape[-1]
            return in_float32(lambda t: rotated(library(max(r, 4), theta=base).to(x.device), t, positions, r), y)
        return rope(x, turn, native_interleaved=True, interleaved=interleaved, rotary_dim=rotary_dim)

    def rope_inv_freq(d, base=10000.0):
        return library(d, theta=base).freqs.detach().float()

    def linear_scaled_inv_freq(d, base, factor):
        module = library(d, theta=base, interpolate_factor=factor)
        return library.forward(module, module.get_seq_pos(2, dtype=torch.float32))[1, 0::2].detach()

    def ntk_scaled_base(base, factor, d):
        # theta as a float64 tensor keeps its frequencies in float64: the base is read back from them
        freqs = library(d, theta=torch.tensor([float(base)], dtype=torch.float64), theta_rescale_factor=factor).freqs
        return float(freqs.detach().double()[1] ** (-d / 2))

    class RotaryEmbedding(torch.nn.Module):
        """holds the library's module (a subclass would replace the forward its own methods call)"""

        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            super().__init__()
            self.rotary = library(d, theta=base)
            self._course_interleaved = interleaved

        def _course_rotate(self, y, positions):
            ids = positions_like(y, positions)
            start, t = ids.reshape(-1, ids.shape[-1])[0, 0], ids.shape[-1]
            steps = torch.arange(t, device=y.device) + start
            if not ids.is_floating_point() and bool((ids == steps).all()):
                # consecutive positions: the queries are the last of keys at 0..start+t-1
                keys = torch.cat((y.new_zeros(*y.shape[:-2], int(start), y.shape[-1]), y), dim=-2)
                return self.rotary.rotate_queries_with_cached_keys(y, keys, seq_dim=-2)[0]
            return rotated(self.rotary, y, positions, y.shape[-1])

        def forward(self, q, k, positions):
            def turn(y):
                return in_float32(lambda t: self._course_rotate(t, positions), y)
            return tuple(pairing(t, turn, True, self._course_interleaved) for t in (q, k))

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq, "RotaryEmbedding": RotaryEmbedding,
            "linear_scaled_inv_freq": linear_scaled_inv_freq, "ntk_scaled_base": ntk_scaled_base}
