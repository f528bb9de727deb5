"""Wrong RoPE implementations that learners really write."""
from tests.bank import Bug, variant

# apply_rope, rope_matrix and RotaryEmbedding call rope_inv_freq in the reference solution,
# so a wrong table legitimately makes them wrong too.
USERS_OF_INV_FREQ = ("rope.apply_rope", "rope.rope_matrix", "rope.RotaryEmbedding", "rope.cached_rope_attention")
# cached_rope_attention rotates with apply_rope in the reference solution.
USERS_OF_APPLY = ("rope.cached_rope_attention",)

BUGS = [
    Bug("inv_freq_k_over_d", "rope.rope_inv_freq", '''
def rope_inv_freq(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return (base ** (-torch.arange(d // 2, dtype=torch.float32) / d))
''', mistake="exponent must be 2k/d", cascades=USERS_OF_INV_FREQ, key="exponent-k-over-d"),
    Bug("inv_freq_wavelength", "rope.rope_inv_freq", '''
def rope_inv_freq(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return base ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
''', mistake="frequencies are their inverses", cascades=USERS_OF_INV_FREQ, key="frequency-vs-wavelength"),
    Bug("inv_freq_float64", "rope.rope_inv_freq", '''
def rope_inv_freq(d, base=10000.0):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
''', mistake="expected float32", key="wrong-dtype"),
    Bug("inv_freq_odd_accepted", "rope.rope_inv_freq", '''
def rope_inv_freq(d, base=10000.0):
    return base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
''', mistake="expected a ValueError naming 'd'", key="no-value-error"),
    Bug("complex_interleaved_pairs", "rope.rotate_complex", '''
def rotate_complex(x, angles):
    if x.shape[-1] % 2:
        raise ValueError(f"x must have an even last dimension, got {x.shape[-1]}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    z = torch.view_as_complex(x.to(work).reshape(*x.shape[:-1], -1, 2).contiguous())
    angles = torch.as_tensor(angles).to(work)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)
''', mistake="as view_as_complex reads them", key="pairing-convention"),
    Bug("complex_conjugate", "rope.rotate_complex", variant("rope", "rotate_complex", (
        "z = z * torch.polar(torch.ones_like(angles), angles)",
        "z = z * torch.polar(torch.ones_like(angles), -angles)")),
        mistake="the conjugate", key="rotation-direction"),
    Bug("complex_sin_cos_swapped", "rope.rotate_complex", '''
def rotate_complex(x, angles):
    if x.shape[-1] % 2:
        raise ValueError(f"x must have an even last dimension, got {x.shape[-1]}")
    h = x.shape[-1] // 2
    a, b = x[..., :h].float(), x[..., h:].float()
    c, s = torch.as_tensor(angles).float().sin(), torch.as_tensor(angles).float().cos()
    return torch.cat((a * c - b * s, a * s + b * c), dim=-1).to(x.dtype)
''', mistake="sine and cosine swapped", key="sin-cos-swapped"),
    Bug("complex_half_precision", "rope.rotate_complex", '''
def rotate_complex(x, angles):
    if x.shape[-1] % 2:
        raise ValueError(f"x must have an even last dimension, got {x.shape[-1]}")
    h = x.shape[-1] // 2
    angles = torch.as_tensor(angles).to(x.dtype)
    a, b = x[..., :h], x[..., h:]
    return torch.cat((a * angles.cos() - b * angles.sin(), a * angles.sin() + b * angles.cos()), dim=-1)
''', mistake="half precision", key="half-precision"),
    Bug("complex_float32_out", "rope.rotate_complex", variant("rope", "rotate_complex", (
        "return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)", "return torch.cat((z.real, z.imag), dim=-1)")),
        mistake="expected float16", key="wrong-dtype"),
    Bug("complex_in_place", "rope.rotate_complex", '''
def rotate_complex(x, angles):
    if x.shape[-1] % 2:
        raise ValueError(f"x must have an even last dimension, got {x.shape[-1]}")
    h = x.shape[-1] // 2
    a, b = x[..., :h].clone(), x[..., h:].clone()
    angles = torch.as_tensor(angles, device=x.device).float()
    x[..., :h] = a * angles.cos() - b * angles.sin()
    x[..., h:] = a * angles.sin() + b * angles.cos()
    return x
''', mistake="in place", key="in-place"),
    Bug("complex_odd_d_accepted", "rope.rotate_complex", variant("rope", "rotate_complex", (
        'raise ValueError(f"x must have an even last dimension (pairs of features), got {d}")', "pass")),
        mistake="expected a ValueError", key="no-value-error"),
    Bug("apply_swapped_conventions", "rope.apply_rope", '''
_right_apply_rope = apply_rope
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    return _right_apply_rope(x, positions, base, not interleaved, rotary_dim)
''', mistake="other pairing convention", cascades=USERS_OF_APPLY, key="pairing-convention"),
    Bug("apply_mixed_conventions", "rope.apply_rope", '''
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 2 <= r <= d:
        raise ValueError(f"rotary_dim must be even and at most d={d}, got rotary_dim={r}")
    angles = torch.as_tensor(positions, device=x.device).float()[..., None] * rope_inv_freq(r, base).to(x.device)
    angles = angles.repeat_interleave(2, dim=-1)  # cos/sin per pair (2k, 2k+1), as the interleaved convention builds them
    part = x[..., :r].float()
    if interleaved:
        turned = torch.stack((-part[..., 1::2], part[..., 0::2]), dim=-1).flatten(-2)
    else:
        turned = torch.cat((-part[..., r // 2:], part[..., :r // 2]), dim=-1)  # rotate_half: half-split pairs
    return torch.cat(((part * angles.cos() + turned * angles.sin()).to(x.dtype), x[..., r:]), dim=-1)
''', mistake="pairing conventions mixed", cascades=USERS_OF_APPLY, key="pairing-mixed"),
    Bug("apply_wrong_direction", "rope.apply_rope", '''
_right_apply_rope = apply_rope
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    return _right_apply_rope(x, -torch.as_tensor(positions), base, interleaved, rotary_dim)
''', mistake="rotating the other way", cascades=USERS_OF_APPLY, key="rotation-direction"),
    Bug("apply_ignores_positions", "rope.apply_rope", '''
_right_apply_rope = apply_rope
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    return _right_apply_rope(x, torch.arange(x.shape[-2]), base, interleaved, rotary_dim)
''', mistake="positions restarting at 0", cascades=USERS_OF_APPLY, key="positions-restart"),
    Bug("apply_freq_over_head_dim", "rope.apply_rope", '''
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 2 <= r <= d:
        raise ValueError(f"bad rotary_dim={r}")
    angles = torch.as_tensor(positions).float()[..., None] * rope_inv_freq(d, base)[: r // 2]
    rotated = rotate_pairs(x[..., :r].float(), angles.cos(), angles.sin(), interleaved)
    return torch.cat((rotated.to(x.dtype), x[..., r:]), dim=-1)
''', mistake="head dimension d instead of rotary_dim", key="rotary-dim"),
    Bug("apply_half_precision_angles", "rope.apply_rope", '''
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 2 <= r <= d:
        raise ValueError(f"bad rotary_dim={r}")
    angles = torch.as_tensor(positions).to(x.dtype)[..., None] * rope_inv_freq(r, base).to(x.dtype)
    rotated = rotate_pairs(x[..., :r], angles.cos(), angles.sin(), interleaved)
    return torch.cat((rotated, x[..., r:]), dim=-1)
''', mistake="half precision", key="half-precision"),
    Bug("apply_in_place", "rope.apply_rope", '''
_right_apply_rope = apply_rope
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    out = _right_apply_rope(x, positions, base, interleaved, rotary_dim)
    x.copy_(out)
    return x
''', mistake="in place", cascades=USERS_OF_APPLY, key="in-place"),
    Bug("apply_helpers_on_cpu", "rope.apply_rope", '''
_right_apply_rope = apply_rope
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    if x.device.type != "cpu":
        return _right_apply_rope(x.new_zeros(x.shape, device="cpu"), torch.zeros(x.shape[-2]), base, interleaved, rotary_dim)
    return _right_apply_rope(x, positions, base, interleaved, rotary_dim)
''', mistake="x.device", key="device"),
    Bug("apply_no_rotary_dim_check", "rope.apply_rope", '''
_right_apply_rope = apply_rope
def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    if rotary_dim is not None and (rotary_dim % 2 or not 2 <= rotary_dim <= x.shape[-1]):
        rotary_dim = x.shape[-1]
    return _right_apply_rope(x, positions, base, interleaved, rotary_dim)
''', mistake="expected a ValueError naming 'rotary_dim'", key="no-value-error"),
    Bug("matrix_transposed", "rope.rope_matrix", '''
_right_rope_matrix = rope_matrix
def rope_matrix(position, d, base=10000.0, interleaved=False):
    return _right_rope_matrix(position, d, base, interleaved).T.contiguous()
''', mistake="R.T instead of R", key="matrix-transposed"),
    Bug("matrix_ignores_interleaved", "rope.rope_matrix", '''
_right_rope_matrix = rope_matrix
def rope_matrix(position, d, base=10000.0, interleaved=False):
    return _right_rope_matrix(position, d, base, False)
''', mistake="other pairing convention", key="pairing-convention"),
    Bug("perm_inverse", "rope.interleaved_to_half_split", '''
def interleaved_to_half_split(d):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return torch.argsort(torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2))))
''', mistake="inverse permutation", key="inverse-permutation"),
    Bug("perm_float", "rope.interleaved_to_half_split", '''
def interleaved_to_half_split(d):
    if d % 2:
        raise ValueError(f"d must be even, got d={d}")
    return torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2))).float()
''', mistake="expected int64", key="wrong-dtype"),
    Bug("module_cache_does_not_grow", "rope.RotaryEmbedding", '''
_RightRotary = RotaryEmbedding
class RotaryEmbedding(_RightRotary):
    def extend_cache(self, length):
        if hasattr(self, "cos_cached"):
            return
        super().extend_cache(length)
'''),
    Bug("module_ignores_interleaved", "rope.RotaryEmbedding", '''
_RightRotary = RotaryEmbedding
class RotaryEmbedding(_RightRotary):
    def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
        super().__init__(d, base, max_len, False)
''', mistake="interleaved=True not passed on", key="default-argument"),
    Bug("module_counts_from_one", "rope.RotaryEmbedding", variant("rope", "RotaryEmbedding", (
        "angles = torch.arange(length, dtype=torch.float64, device=device)[:, None] * inv_freq64",
        "angles = torch.arange(1, length + 1, dtype=torch.float64, device=device)[:, None] * inv_freq64")),
        mistake="positions counted from 1", key="count-from-one"),
    Bug("module_returns_float32", "rope.RotaryEmbedding", '''
_RightRotary = RotaryEmbedding
class RotaryEmbedding(_RightRotary):
    def forward(self, q, k, positions):
        rq, rk = super().forward(q.float(), k.float(), positions)
        return rq, rk
''', mistake="expected float16", key="wrong-dtype"),
    Bug("module_no_width_check", "rope.RotaryEmbedding", '''
_RightRotary = RotaryEmbedding
class RotaryEmbedding(_RightRotary):
    def forward(self, q, k, positions):
        if q.shape[-1] != self.d:
            q = torch.nn.functional.pad(q, (0, self.d - q.shape[-1]))
        return super().forward(q, k, positions)
''', mistake="naming 'q'", key="no-value-error"),

]

# cached_rope_attention: one slip each in the reference (tests.bank.variant).
def cached(*replacements):
    return variant("rope", "cached_rope_attention", *replacements)


POSITIONS = "positions = (mask.long().cumsum(-1) - 1).masked_fill(~mask, 0)  # position_ids_from_mask (notebook 02)"
NEW_POSITIONS = "new_positions = positions[:, None, t_past:]                     # next_position_ids: (B, 1, T_new)"
CAUSAL = ("causal = torch.arange(t_past + t_new, device=q.device) <= t_past + torch.arange(t_new, "
          "device=q.device)[:, None]")
KEYS = "keys = torch.cat((past_k, apply_rope(k, new_positions, base)), dim=-2)"

BUGS += [
    Bug("cached_strict_mask", "rope.cached_rope_attention", cached(
        (CAUSAL, CAUSAL.replace("<=", "<"))), mistake="hides each query's own key", key="mask-strict"),
    Bug("cached_new_tokens_at_zero", "rope.cached_rope_attention", cached(
        (NEW_POSITIONS, "new_positions = torch.arange(t_new, device=q.device).expand(q.shape[0], 1, t_new)")),
        mistake="numbered from 0 in every call", key="positions-restart"),
    Bug("cached_decode_counts_padding", "rope.cached_rope_attention", cached(
        (NEW_POSITIONS, "new_positions = positions[:, None, t_past:] if t_past == 0 else "
                        "torch.arange(t_past, t_past + t_new, device=q.device).expand(q.shape[0], 1, t_new)")),
        mistake="while the prefill counted only real tokens", key="positions-inconsistent"),
    Bug("cached_padding_keys_not_masked", "rope.cached_rope_attention", cached(
        ("allowed = causal & mask[:, None, None, :]", "allowed = causal")),
        mistake="padding keys not masked", key="padding-not-masked"),
    Bug("cached_keys_rotated_again", "rope.cached_rope_attention", cached(
        (KEYS, "keys = apply_rope(torch.cat((past_k, k), dim=-2), positions[:, None, :], base)")),
        mistake="rotated a second time", key="cache-rerotated"),
    Bug("cached_concatenated_backwards", "rope.cached_rope_attention", cached(
        (KEYS, "keys = torch.cat((apply_rope(k, new_positions, base), past_k), dim=-2)"),
        ("values = torch.cat((past_v, v), dim=-2)", "values = torch.cat((v, past_v), dim=-2)")),
        mistake="put before the cached ones", key="cache-order"),
    Bug("cached_causal_top_left", "rope.cached_rope_attention", cached(
        (CAUSAL, "causal = torch.arange(t_past + t_new, device=q.device) <= torch.arange(t_new, device=q.device)[:, None]")),
        mistake="aligned to the start", key="queries-at-start"),
    Bug("cached_interleaved_pairs", "rope.cached_rope_attention", cached(
        (KEYS, "keys = torch.cat((past_k, apply_rope(k, new_positions, base, interleaved=True)), dim=-2)"),
        ("apply_rope(q, new_positions, base)", "apply_rope(q, new_positions, base, interleaved=True)")),
        mistake="other pairing convention", key="pairing-convention"),
    Bug("cached_not_scaled", "rope.cached_rope_attention", cached(
        (" / math.sqrt(d)", "")), mistake="not divided by sqrt(d)", key="not-scaled"),
    Bug("cached_returns_float32", "rope.cached_rope_attention", cached(
        ("return (weights @ values.to(work)).to(q.dtype), (keys, values)",
         "return weights @ values.to(work), (keys, values)")), mistake="expected float16", key="wrong-dtype"),
    Bug("cached_no_mask_length_check", "rope.cached_rope_attention", cached(
        ("if mask.dim() != 2 or mask.shape[-1] != t_past + t_new:", "if mask.dim() != 2:")),
        mistake="'attention_mask'", key="no-value-error"),
]
