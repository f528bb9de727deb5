"""Hugging Face (transformers' Llama) style: ``apply_rotary_pos_emb`` with ``rotate_half`` and,
optionally, a rotary module (`found` holds at most one). Pairs are half-split. Two generations:

- transformers >= 4.38: ``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1)``
  takes cos and sin per token; the module's ``forward(x, position_ids)`` makes them (built from a
  config as in >= 4.45, or from ``(dim, max_position_embeddings, base)``);
- transformers 4.28-4.37: ``apply_rotary_pos_emb(q, k, cos, sin, position_ids[, unsqueeze_dim])``
  looks the tokens' rows up in whole cos and sin tables, which the module's ``forward(x,
  seq_len)`` returns (``(seq_len, dim)``, or ``(1, 1, seq_len, dim)`` before 4.34).

A module built for one call is moved to the input's device, as a model moves its modules."""
import inspect
import types

import torch

from course.adapting import pairing, positions_like, rope, whole

FUNCTIONS = ("rotate_half", "apply_rotary_pos_emb")


def _required(function, name: str) -> bool:
    """whether `function` has a parameter `name` without a default"""
    try:
        parameter = inspect.signature(function).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is parameter.empty


def _parameters(function) -> list[str]:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return []


def _build(cls, d, base, max_len):
    """the learner's rotary module, built from a config or from (dim, ...)"""
    if _parameters(cls.__init__)[1:2] == ["config"]:
        config = types.SimpleNamespace(
            rope_parameters={"rope_type": "default", "rope_theta": float(base)}, rope_theta=float(base),
            rope_scaling=None, max_position_embeddings=max_len, head_dim=d, hidden_size=d, num_attention_heads=1,
            partial_rotary_factor=1.0)
        return (config,), {}
    return (d,), {"max_position_embeddings": max_len, "base": base}


def _default_cos_sin(x, position_ids, base):
    """cos and sin as transformers' default rotary module makes them (for code without a module)"""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64, device=x.device).float() / d))
    emb = torch.cat((position_ids[..., None].float() * inv_freq,) * 2, dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def adapt(found: dict) -> dict:
    apply_rotary_pos_emb = found["apply_rotary_pos_emb"]
    module_class = next((v for n, v in found.items() if n not in FUNCTIONS), None)
    looks_up = _required(apply_rotary_pos_emb, "position_ids")  # 4.28-4.37
    forward = _parameters(module_class.forward) if module_class is not None else []
    module_tables = "seq_len" in forward and "position_ids" not in forward

    def module_cos_sin(module, x, position_ids):
        """cos and sin per token (batch, T, D) from the learner's module, of either generation"""
        if not module_tables:
            return module_class.forward(module, x, position_ids)
        if position_ids.is_floating_point() and not bool((position_ids == position_ids.round()).all()):
            inv_freq = getattr(module, "inv_freq", None)
            if inv_freq is None:
                raise ValueError(f"positions must be whole numbers: your {module_class.__name__} makes cos "
                                 "and sin tables by whole position")
            emb = torch.cat((position_ids[..., None].double() * inv_freq.double(),) * 2, dim=-1)
            return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        ids = whole(position_ids, f"your {module_class.__name__}")
        length = max(int(ids.max()) + 1 if ids.numel() else 1, 2)
        cos, sin = module_class.forward(module, x, seq_len=length)
        cos, sin = (t.reshape(t.shape[-2], t.shape[-1]) for t in (cos, sin))  # (1, 1, S, D) before 4.34
        return cos[ids], sin[ids]

    def rotate(x, positions, cos_sin):
        """x as (batch, 1 head, T, D) through apply_rotary_pos_emb, cos and sin from cos_sin(x, position_ids);
        an apply_rotary_pos_emb that looks rows up by position_ids gets those rows as its tables"""
        t, d = x.shape[-2], x.shape[-1]
        tokens = x.reshape(-1, 1, t, d)
        position_ids = positions_like(x, positions).reshape(-1, t)
        cos, sin = cos_sin(tokens, position_ids)
        if not looks_up:
            return apply_rotary_pos_emb(tokens, tokens, cos, sin)[0].reshape(x.shape)
        rows = cos.shape[0] * t
        # at least two rows: the oldest versions squeeze the table's leading dimensions
        cos_table, sin_table = (torch.cat((c.reshape(rows, d), c.reshape(rows, d)[:1])) for c in (cos, sin))
        ids = torch.arange(rows, device=x.device).reshape(-1, t)
        return apply_rotary_pos_emb(tokens, tokens, cos_table, sin_table, ids)[0].reshape(x.shape)

    def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
        def turn(y):
            if module_class is None:
                return rotate(y, positions, lambda t, p: _default_cos_sin(t, p, base))
            args, kwargs = _build(module_class, y.shape[-1], base, 2048)
            module = module_class(*args, **kwargs).to(y.device)  # as a model moves its modules
            return rotate(y, positions, lambda t, p: module_cos_sin(module, t, p))
        return rope(x, turn, native_interleaved=False, interleaved=interleaved, rotary_dim=rotary_dim)

    made = {"apply_rope": apply_rope}
    if module_class is None:
        return made

    def rope_inv_freq(d, base=10000.0):
        args, kwargs = _build(module_class, d, base, 2048)
        at_one = torch.ones(1, 1, dtype=torch.long)
        cos, sin = module_cos_sin(module_class(*args, **kwargs), torch.zeros(1, 1, d), at_one)
        return torch.atan2(sin[..., : d // 2], cos[..., : d // 2]).reshape(d // 2)

    class RotaryEmbedding(module_class):
        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            args, kwargs = _build(module_class, d, base, max_len)
            super().__init__(*args, **kwargs)
            self._course_interleaved = interleaved

        def forward(self, q, k, positions):
            def turn(y):
                return rotate(y, positions, lambda t, p: module_cos_sin(self, t, p))
            return tuple(pairing(t, turn, False, self._course_interleaved) for t in (q, k))

    return {**made, "rope_inv_freq": rope_inv_freq, "RotaryEmbedding": RotaryEmbedding}
