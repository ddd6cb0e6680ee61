"""Gated self-attention with pair bias (AF3 Algorithm 24), dense over tokens or windowed over atoms."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.modules.atom_windows import AtomWindows
from models.modules.primitives import AdaLN, linear


class AttentionPairBias(nn.Module):
    """a (B, S, L, c_a) -> update (B, S, L, c_a); S = diffusion copies (1 in the trunk), L = tokens or atoms.

    Pair input ``z``: dense (B, L, L, c_z), or windowed (B, n_blocks, n_queries, n_keys, c_z) when ``windows``
    is given. ``key_mask`` (B, L) bool. With ``c_cond`` the input is normalised by AdaLN on s (B, S|1, L, c_cond)
    and the output gated by σ(Linear(s)) (diffusion / atom transformers); without it by a LayerNorm (Pairformer).
    """

    def __init__(self, c_a: int, c_z: int, n_heads: int, c_cond: int | None = None) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, c_a // n_heads
        self.norm_a = AdaLN(c_a, c_cond) if c_cond is not None else nn.LayerNorm(c_a)
        self.proj_q = linear(c_a, c_a, bias=True)
        self.proj_kv = linear(c_a, 2 * c_a)
        self.proj_gate = linear(c_a, c_a, init="gating")
        self.norm_z = nn.LayerNorm(c_z)
        self.proj_z = linear(c_z, n_heads)
        self.proj_out = linear(c_a, c_a, init="zeros" if c_cond is None else "default")
        self.gate_out = (linear(c_cond, c_a, bias=True, init="adaptive_zero", bias_init=-2.0)
                         if c_cond is not None else None)

    def pair_bias(self, z: Tensor) -> Tensor:
        """The attention logits' pair term (B, H, L, L) from dense z (B, L, L, c_z)."""
        return self.proj_z(self.norm_z(z)).permute(0, 3, 1, 2)

    def forward(
        self,
        a: Tensor,
        z: Tensor,
        key_mask: Tensor,
        s: Tensor | None = None,
        windows: AtomWindows | None = None,
        bias: Tensor | None = None,
    ) -> Tensor:
        """``bias``: ``pair_bias(z)`` computed earlier (dense case), to reuse it across calls with the same z."""
        x = self.norm_a(a, s) if self.gate_out is not None else self.norm_a(a)
        b, n_s, length, c = x.shape
        h, d = self.n_heads, self.head_dim
        q = self.proj_q(x).view(b, n_s, length, h, d) * d**-0.5
        k, v = self.proj_kv(x).view(b, n_s, length, 2, h, d).unbind(dim=3)
        if windows is None:
            bias = self.pair_bias(z) if bias is None else bias
            logits = torch.einsum("bsqhd,bskhd->bshqk", q, k) + bias[:, None]
            logits = logits.masked_fill(~key_mask[:, None, None, None, :], torch.finfo(logits.dtype).min)
            o = torch.einsum("bshqk,bskhd->bsqhd", torch.softmax(logits, dim=-1), v)
        else:
            bias = self.proj_z(self.norm_z(z))
            q, k, v = windows.queries(q, 2), windows.keys(k, 2), windows.keys(v, 2)  # (B, S, n, W, H, D)
            logits = torch.einsum("bsnqhd,bsnkhd->bsnhqk", q, k) + bias.permute(0, 1, 4, 2, 3)[:, None]
            logits = logits.masked_fill(
                ~windows.key_valid[:, None, :, None, None, :], torch.finfo(logits.dtype).min
            )
            o = torch.einsum("bsnhqk,bsnkhd->bsnqhd", torch.softmax(logits, dim=-1), v)
            o = windows.unblock(o, 2)
        o = torch.sigmoid(self.proj_gate(x)) * o.reshape(b, n_s, length, c)
        o = self.proj_out(o)
        return torch.sigmoid(self.gate_out(s)) * o if self.gate_out is not None else o
