"""transformers' GPT-NeoX style RoPE (transformers 5.x): a config-built rotary module whose forward returns
(cos, sin) for the first rotary_ndims = int(head_size * partial_rotary_factor) features, half-split pairs, and
apply_rotary_pos_emb rotating those features of q and k, the rest passed through.

Source: huggingface/transformers 5.23.0 (the installed wheel), models/gpt_neox/modeling_gpt_neox.py
(GPTNeoXRotaryEmbedding, rotate_half, apply_rotary_pos_emb) and configuration_gpt_neox.py (rotary_pct ->
rope_parameters["partial_rotary_factor"], rotary_emb_base -> rope_parameters["rope_theta"]).

Signatures: GPTNeoXRotaryEmbedding(config); static compute_default_rope_parameters(config, device=None, **kwargs)
-> (inv_freq, attention_factor); forward(x, position_ids) -> (cos, sin), each (B, T, rotary_ndims) in x's dtype;
rotate_half(x); apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1) -> (q_embed, k_embed).
The config needs hidden_size, num_attention_heads, max_position_embeddings and rope_parameters
{"rope_type": "default", "rope_theta": base, "partial_rotary_factor": pct}; head_dim is optional.
Only "default" rope_type is written here (transformers takes the others from ROPE_INIT_FUNCTIONS).
Layout: q, k (B, H, T, D) with unsqueeze_dim=1 ((B, T, H, D) with unsqueeze_dim=2); position_ids (B, T).
Pairing: half-split over the rotary width (k, k + rotary_ndims/2); frequencies over rotary_ndims.
Dtype: angles in float32, cos/sin cast to x's dtype, the rotation then runs in q's dtype.

Course exercises: rope.rope_inv_freq = GPTNeoXRotaryEmbedding(config with head size d, pct 1).inv_freq;
rope.apply_rope(x, p, base, rotary_dim=r) = apply_rotary_pos_emb(x, x, *module(x, p), ...)[0] with
pct = r / d; rope.RotaryEmbedding = the module and apply_rotary_pos_emb on q and k.
Cannot express: interleaved pairs, argument checks; cos/sin are made in x's dtype, so a float16 input is
rotated with float16 tables (half-precision inputs are held to the library's accuracy, not float32's).
"""
import torch
from torch import nn


class GPTNeoXRotaryEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.rope_type = config.rope_parameters.get("rope_type", "default")
        inv_freq, self.attention_scaling = self.compute_default_rope_parameters(config)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config, device=None, **kwargs):
        base = config.rope_parameters["rope_theta"]
        partial_rotary_factor = config.rope_parameters.get("partial_rotary_factor", 1.0)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dim = int(head_dim * partial_rotary_factor)
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        return inv_freq.to(device), 1.0

    @torch.no_grad()
    def forward(self, x, position_ids):
        angles = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    rotary_dim = cos.shape[-1]
    q_rot, q_pass = q[..., :rotary_dim], q[..., rotary_dim:]
    k_rot, k_pass = k[..., :rotary_dim], k[..., rotary_dim:]
    q_embed = q_rot * cos + rotate_half(q_rot) * sin
    k_embed = k_rot * cos + rotate_half(k_rot) * sin
    return torch.cat((q_embed, q_pass), dim=-1), torch.cat((k_embed, k_pass), dim=-1)
