"""flash-attn's pure-PyTorch reference: ``apply_rotary_emb_torch(x, cos, sin, interleaved)`` on ``(B, T,
H, D)``, cos and sin ``(T, rotary_dim/2)``. It pairs features either way and rotates a leading part
itself, so both are passed on to it (never reordered here): a flag or width it drops is its own mistake."""
from course.adapting import from_layout, positions_like, to_layout, unscaled_inv_freq


def adapt(found: dict) -> dict:
    apply_rotary_emb_torch = found["apply_rotary_emb_torch"]

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        width = x.shape[-1] if rotary_dim is None else rotary_dim
        angles = positions_like(x, positions).reshape(-1, 1).float() * unscaled_inv_freq(width, base, x.device)
        tokens = to_layout(x, "bthd", tokens=True)  # every token its own row of cos and sin: (1, N, 1, D)
        # float32 tables (flash-attn's own module casts them to x's dtype first): computed in float32
        out = apply_rotary_emb_torch(tokens, angles.cos(), angles.sin(), bool(interleaved))
        return from_layout(out, "bthd", x).to(x.dtype)

    return {"apply_rope": apply_rope}
