"""The Pairformer block as it was before the CPU speed work (commit ed94538), frozen for side-by-side timing in
``bench_pairformer_vs_boltz.py``: same parameter names as ``models.modules.pairformer.PairformerBlock``, so
one state dict loads into both. Pure-PyTorch attention core only; no dropout (the benchmark runs p = 0)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.config import ModelConfig
from models.triangle_attention_ref import triangle_attention_torch


def _linear(c_in: int, c_out: int, bias: bool = False) -> nn.Linear:
    return nn.Linear(c_in, c_out, bias=bias)


class Transition(nn.Module):
    def __init__(self, c: int, n: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.proj_in = _linear(c, 2 * n * c)
        self.proj_out = _linear(n * c, c)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.proj_in(self.norm(x)).chunk(2, dim=-1)
        return self.proj_out(nn.functional.silu(a) * b)


class TriangleMultiplication(nn.Module):
    def __init__(self, c_z: int, c_hidden: int, *, outgoing: bool) -> None:
        super().__init__()
        self.outgoing = outgoing
        self.norm_in = nn.LayerNorm(c_z)
        self.proj_a, self.gate_a = _linear(c_z, c_hidden), _linear(c_z, c_hidden)
        self.proj_b, self.gate_b = _linear(c_z, c_hidden), _linear(c_z, c_hidden)
        self.gate_out = _linear(c_z, c_z)
        self.norm_out = nn.LayerNorm(c_hidden)
        self.proj_out = _linear(c_hidden, c_z)

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        z = self.norm_in(z)
        mask = pair_mask[..., None].to(z.dtype)
        a = torch.sigmoid(self.gate_a(z)) * self.proj_a(z) * mask
        b = torch.sigmoid(self.gate_b(z)) * self.proj_b(z) * mask
        if self.outgoing:
            x = torch.einsum("bikc,bjkc->bijc", a, b)
        else:
            x = torch.einsum("bkic,bkjc->bijc", a, b)
        return torch.sigmoid(self.gate_out(z)) * self.proj_out(self.norm_out(x))


class TriangleAttention(nn.Module):
    def __init__(self, c_z: int, n_heads: int, head_dim: int, *, starting: bool, variant: str) -> None:
        super().__init__()
        self.starting, self.variant, self.n_heads, self.head_dim = starting, variant, n_heads, head_dim
        width = n_heads * head_dim
        self.norm = nn.LayerNorm(c_z)
        self.proj_qkv = _linear(c_z, 3 * width)
        self.proj_bias = _linear(c_z, n_heads)
        self.proj_gate = _linear(c_z, width)
        self.norm_attn = nn.LayerNorm(width) if variant != "vanilla" else None
        self.proj_out = _linear(width, c_z)

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        if not self.starting:
            z, pair_mask = z.transpose(1, 2), pair_mask.transpose(1, 2)
        z = self.norm(z)
        b, n_i, n_j, _ = z.shape
        bias = self.proj_bias(z).permute(0, 3, 1, 2)
        qkv = self.proj_qkv(z).view(b, n_i, n_j, 3, self.n_heads, self.head_dim)
        q, k, v = (t.transpose(2, 3) for t in qkv.unbind(dim=3))
        o = triangle_attention_torch(q, k, v, bias, pair_mask, variant=self.variant)
        o = o.transpose(2, 3).reshape(b, n_i, n_j, self.n_heads * self.head_dim)
        if self.norm_attn is not None:
            o = self.norm_attn(o)
        out = self.proj_out(torch.sigmoid(self.proj_gate(z)) * o)
        return out if self.starting else out.transpose(1, 2)


class AttentionPairBias(nn.Module):
    def __init__(self, c_a: int, c_z: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, c_a // n_heads
        self.norm_a = nn.LayerNorm(c_a)
        self.proj_q = _linear(c_a, c_a, bias=True)
        self.proj_kv = _linear(c_a, 2 * c_a)
        self.proj_gate = _linear(c_a, c_a)
        self.norm_z = nn.LayerNorm(c_z)
        self.proj_z = _linear(c_z, n_heads)
        self.proj_out = _linear(c_a, c_a)

    def forward(self, a: Tensor, z: Tensor, key_mask: Tensor) -> Tensor:
        x = self.norm_a(a)
        b, n_s, length, c = x.shape
        h, d = self.n_heads, self.head_dim
        q = self.proj_q(x).view(b, n_s, length, h, d) * d**-0.5
        k, v = self.proj_kv(x).view(b, n_s, length, 2, h, d).unbind(dim=3)
        bias = self.proj_z(self.norm_z(z))
        logits = torch.einsum("bsqhd,bskhd->bshqk", q, k) + bias.permute(0, 3, 1, 2)[:, None]
        logits = logits.masked_fill(~key_mask[:, None, None, None, :], torch.finfo(logits.dtype).min)
        o = torch.einsum("bshqk,bskhd->bsqhd", torch.softmax(logits, dim=-1), v)
        o = torch.sigmoid(self.proj_gate(x)) * o.reshape(b, n_s, length, c)
        return self.proj_out(o)


class PairBlock(nn.Module):
    def __init__(self, config: ModelConfig, c_z: int) -> None:
        super().__init__()
        c_hidden = config.tri_mul_hidden if (config.tri_mul_hidden and c_z == config.c_z) else c_z
        heads, d = max(1, c_z // config.tri_att_head_dim), config.tri_att_head_dim
        self.tri_mul_out = TriangleMultiplication(c_z, c_hidden, outgoing=True)
        self.tri_mul_in = TriangleMultiplication(c_z, c_hidden, outgoing=False)
        self.tri_att_start = TriangleAttention(c_z, heads, d, starting=True, variant=config.triangle_attention)
        self.tri_att_end = TriangleAttention(c_z, heads, d, starting=False, variant=config.triangle_attention)
        self.transition = Transition(c_z, config.transition_expansion)

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        z = z + self.tri_mul_out(z, pair_mask)
        z = z + self.tri_mul_in(z, pair_mask)
        z = z + self.tri_att_start(z, pair_mask)
        z = z + self.tri_att_end(z, pair_mask)
        return z + self.transition(z)


class PairformerBlock(nn.Module):
    def __init__(self, config: ModelConfig, c_s: int, c_z: int) -> None:
        super().__init__()
        self.pair = PairBlock(config, c_z)
        self.attention = AttentionPairBias(c_s, c_z, config.n_single_heads)
        self.transition = Transition(c_s, config.transition_expansion)

    def forward(self, s: Tensor, z: Tensor, token_mask: Tensor) -> tuple[Tensor, Tensor]:
        pair_mask = token_mask[:, :, None] & token_mask[:, None, :]
        z = self.pair(z, pair_mask)
        s = s + self.attention(s[:, None], z, token_mask)[:, 0]
        return s + self.transition(s), z
