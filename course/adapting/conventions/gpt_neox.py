"""transformers' GPT-NeoX style: ``GPTNeoXRotaryEmbedding(config)`` whose ``forward(x, position_ids)`` gives
cos and sin for the first ``int(head_size * partial_rotary_factor)`` features, and ``apply_rotary_pos_emb(q,
k, cos, sin, unsqueeze_dim=1)`` rotating those (half-split over that width) and passing the rest. Partial
rotary is the learner's own: the module is built with ``partial_rotary_factor = rotary_dim / d`` and
apply_rotary_pos_emb is given the whole vector. Rotated in float32 (the library makes its tables in x's dtype)."""
import math
import types

import torch

from course.adapting import in_float32, pairing, positions_like, rope


def _config(d, base, max_len, rotary_dim):
    """a GPT-NeoX config of one head of size d whose rotary width is rotary_dim"""
    factor = rotary_dim / d
    while int(d * factor) < rotary_dim:  # d * (r / d) may round below r
        factor = math.nextafter(factor, 2.0)
    return types.SimpleNamespace(hidden_size=d, num_attention_heads=1, head_dim=d, max_position_embeddings=max_len,
                                 rope_parameters={"rope_type": "default", "rope_theta": float(base),
                                                  "partial_rotary_factor": factor})


def adapt(found: dict) -> dict:
    neox, apply_rotary_pos_emb = found["GPTNeoXRotaryEmbedding"], found["apply_rotary_pos_emb"]
    q = torch.zeros(1, 1, 2, 4)  # partial tables (width 2 of 4) broadcast only if it slices q: not Llama's
    if tuple(apply_rotary_pos_emb(q, q, torch.ones(1, 2, 2), torch.zeros(1, 2, 2))[0].shape) != (1, 1, 2, 4):
        raise ValueError("apply_rotary_pos_emb does not pass the features past cos's width through")

    def rotate(module, x, positions):
        """x (..., T, D) as (batch, 1 head, T, D) through the module's forward and apply_rotary_pos_emb"""
        t, d = x.shape[-2], x.shape[-1]
        tokens = x.reshape(-1, 1, t, d)
        cos, sin = neox.forward(module, tokens, positions_like(x, positions).reshape(-1, t))
        return apply_rotary_pos_emb(tokens, tokens, cos, sin)[0].reshape(x.shape)

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        d = x.shape[-1]

        def turn(whole, r):  # the module's width r of d, and the learner's pass-through of the rest
            module = neox(_config(d, base, 2048, r)).to(x.device)
            return in_float32(lambda t: rotate(module, t, positions), whole)

        def reordered(y):  # y: the first r features, reordered; the rest as given
            return turn(torch.cat((y, x[..., y.shape[-1]:]), dim=-1), y.shape[-1])[..., : y.shape[-1]]

        r = d if rotary_dim is None else rotary_dim
        if interleaved or r % 2 or not 2 <= r <= d:  # not its own: the helpers reorder or refuse
            return rope(x, reordered, native_interleaved=False, interleaved=interleaved, rotary_dim=rotary_dim)
        return turn(x, r)

    def rope_inv_freq(d, base=10000.0):
        cos, sin = neox.forward(neox(_config(d, base, 2048, d)), torch.zeros(1, 1, d), torch.ones(1, 1))
        return torch.atan2(sin[..., : d // 2], cos[..., : d // 2]).reshape(d // 2).float()

    class RotaryEmbedding(neox):
        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            super().__init__(_config(d, base, max_len, d))
            self._course_interleaved = interleaved

        def forward(self, q, k, positions):
            def turn(y):
                return in_float32(lambda t: rotate(self, t, positions), y)
            return tuple(pairing(t, turn, False, self._course_interleaved) for t in (q, k))

    return {"apply_rope": apply_rope, "rope_inv_freq": rope_inv_freq, "RotaryEmbedding": RotaryEmbedding}
