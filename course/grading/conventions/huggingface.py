"""Hugging Face (transformers' Llama) style: ``rotate_half``, ``apply_rotary_pos_emb`` and,
optionally, a rotary module. Pairs are half-split. Two generations are read:

- transformers >= 4.38: ``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1)``
  takes cos and sin per token; the module's ``forward(x, position_ids)`` makes them (built from a
  config as in >= 4.45, or from ``(dim, max_position_embeddings, base)``);
- transformers 4.28-4.37: ``apply_rotary_pos_emb(q, k, cos, sin, position_ids[, unsqueeze_dim])``
  looks the tokens' rows up in whole cos and sin tables, which the module's ``forward(x,
  seq_len)`` returns (``(seq_len, dim)``, or ``(1, 1, seq_len, dim)`` before 4.34)."""
from course.grading.conventions import Convention

MODULES = ("LlamaRotaryEmbedding", "MistralRotaryEmbedding", "Qwen2RotaryEmbedding", "GemmaRotaryEmbedding")

SOURCE = '''
import inspect as _course_inspect
import types as _course_types

_course_hf_module = next((globals()[_n] for _n in _COURSE_HF_MODULES if _n in globals()), None)


def _course_hf_required(function, name):
    """whether `function` has a parameter `name` without a default"""
    try:
        parameter = _course_inspect.signature(function).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is parameter.empty


_course_hf_looks_up = _course_hf_required(apply_rotary_pos_emb, "position_ids")  # 4.28-4.37
_course_hf_module_tables = _course_hf_module is not None and "seq_len" in _course_inspect.signature(
    _course_hf_module.forward).parameters and "position_ids" not in _course_inspect.signature(
    _course_hf_module.forward).parameters


def _course_hf_args(cls, d, base, max_len):
    """how to build the learner's rotary module: from a config, or from (dim, ...)"""
    first = next(iter(list(_course_inspect.signature(cls.__init__).parameters)[1:]), "")
    if first == "config":
        config = _course_types.SimpleNamespace(
            rope_parameters={"rope_type": "default", "rope_theta": float(base)}, rope_theta=float(base),
            rope_scaling=None, max_position_embeddings=max_len, head_dim=d, hidden_size=d, num_attention_heads=1,
            partial_rotary_factor=1.0)
        return (config,), {}
    return (d,), {"max_position_embeddings": max_len, "base": base}


def _course_hf_default_cos_sin(x, position_ids, base):
    """cos and sin as transformers' default rotary module makes them (for a learner without one)"""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (_course_torch.arange(0, d, 2, dtype=_course_torch.int64, device=x.device).float() / d))
    freqs = position_ids[..., None].float() * inv_freq
    emb = _course_torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def _course_hf_module_cos_sin(module, x, position_ids):
    """cos and sin per token (batch, T, D) from the learner's rotary module, of either generation"""
    if not _course_hf_module_tables:
        return _course_hf_module.forward(module, x, position_ids)
    if position_ids.is_floating_point() and not bool((position_ids == position_ids.round()).all()):
        inv_freq = getattr(module, "inv_freq", None)
        if inv_freq is None:
            raise ValueError(f"positions must be whole numbers: your {_course_hf_module.__name__} makes cos "
                             "and sin tables by whole position")
        freqs = position_ids[..., None].double() * inv_freq.double()
        emb = _course_torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    ids = _course_whole(position_ids, f"your {_course_hf_module.__name__}")
    length = max(int(ids.max()) + 1 if ids.numel() else 1, 2)
    cos, sin = _course_hf_module.forward(module, x, seq_len=length)
    cos, sin = (t.reshape(t.shape[-2], t.shape[-1]) for t in (cos, sin))  # (1, 1, S, D) before 4.34
    return cos[ids], sin[ids]


def _course_hf_rotate(x, positions, cos_sin):
    """x as (batch, 1 head, T, D) through apply_rotary_pos_emb, with cos, sin = cos_sin(x, position_ids (batch, T));
    an apply_rotary_pos_emb that looks rows up by position_ids gets those rows as its tables"""
    t, d = x.shape[-2], x.shape[-1]
    tokens = x.reshape(-1, 1, t, d)
    position_ids = _course_positions(x, positions).reshape(-1, t)
    cos, sin = cos_sin(tokens, position_ids)
    if not _course_hf_looks_up:
        return apply_rotary_pos_emb(tokens, tokens, cos, sin)[0].reshape(x.shape)
    rows = cos.shape[0] * t
    # at least two rows: the oldest versions squeeze the table's leading dimensions
    cos_table, sin_table = (_course_torch.cat((c.reshape(rows, d), c.reshape(rows, d)[:1])) for c in (cos, sin))
    ids = _course_torch.arange(rows, device=x.device).reshape(-1, t)
    return apply_rotary_pos_emb(tokens, tokens, cos_table, sin_table, ids)[0].reshape(x.shape)


def apply_rope(x, positions, base=10000.0, interleaved=False, rotary_dim=None):
    def rotate(y):
        if _course_hf_module is None:
            return _course_hf_rotate(y, positions, lambda t, p: _course_hf_default_cos_sin(t, p, base))
        args, kwargs = _course_hf_args(_course_hf_module, y.shape[-1], base, 2048)
        module = _course_hf_module(*args, **kwargs)
        return _course_hf_rotate(y, positions, lambda t, p: _course_hf_module_cos_sin(module, t, p))
    return _course_rope(x, rotary_dim, interleaved, False, rotate)


if _course_hf_module is not None:
    def rope_inv_freq(d, base=10000.0):
        args, kwargs = _course_hf_args(_course_hf_module, d, base, 2048)
        at_one = _course_torch.ones(1, 1, dtype=_course_torch.long)
        cos, sin = _course_hf_module_cos_sin(_course_hf_module(*args, **kwargs), _course_torch.zeros(1, 1, d), at_one)
        return _course_torch.atan2(sin[..., : d // 2], cos[..., : d // 2]).reshape(d // 2)

    class RotaryEmbedding(_course_hf_module):
        def __init__(self, d, base=10000.0, max_len=2048, interleaved=False):
            args, kwargs = _course_hf_args(_course_hf_module, d, base, max_len)
            super().__init__(*args, **kwargs)
            self._course_interleaved = interleaved

        def forward(self, q, k, positions):
            def rotate(y):
                return _course_hf_rotate(y, positions, lambda t, p: _course_hf_module_cos_sin(self, t, p))
            return tuple(_course_pairing(t, rotate, False, self._course_interleaved) for t in (q, k))
'''


def provides(defined: set) -> tuple[dict, dict]:
    module = next((m for m in MODULES if m in defined), None)
    if module is None:
        how = ("your apply_rotary_pos_emb with rotate_half (cos and sin made as transformers' default rotary "
               "module makes them: you define no rotary module)")
        why = f"you define no rotary module ({', '.join(MODULES)}) whose forward returns (cos, sin)"
        return {"apply_rope": how}, {"rope_inv_freq": why, "RotaryEmbedding": why}
    return {
        "apply_rope": f"your apply_rotary_pos_emb with rotate_half, cos and sin from your {module}",
        "rope_inv_freq": f"the angles of your {module}'s cos and sin at position 1",
        "RotaryEmbedding": f"your {module} with apply_rotary_pos_emb",
    }, {}


CONVENTION = Convention(
    key="huggingface",
    section="rope",
    title="the Hugging Face convention",
    names=("rotate_half", "apply_rotary_pos_emb"),
    optional=MODULES,
    provides=provides,
    cannot={
        "interleaved": "interleaved pairs (rotate_half pairs feature k with k + d/2)",
        "rotary_dim": "partial rotary (apply_rotary_pos_emb rotates every feature it is given)",
        "argument_checks": "argument checks (its functions do not validate their arguments)",
    },
    source=SOURCE,
    constants={"_COURSE_HF_MODULES": MODULES},
)
