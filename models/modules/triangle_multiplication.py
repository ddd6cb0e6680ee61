"""Triangle multiplicative updates (AF3 Algorithms 12 and 13). Hidden width = config.tri_mul_c (= c_z by the
width rule, SPEC.md §2.3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.modules.primitives import linear


class TriangleMultiplication(nn.Module):
    """Outgoing (``outgoing=True``, Alg 12: z_ij += Σ_k a_ik b_jk) or incoming (Alg 13: Σ_k a_ki b_kj) edges.

    z (B, N, N, c_z), pair_mask (B, N, N) bool -> update (B, N, N, c_z).
    """

    def __init__(self, c_z: int, c_hidden: int, *, outgoing: bool) -> None:
        super().__init__()
        self.outgoing = outgoing
        self.norm_in = nn.LayerNorm(c_z)
        self.proj_a = linear(c_z, c_hidden)
        self.gate_a = linear(c_z, c_hidden, init="gating")
        self.proj_b = linear(c_z, c_hidden)
        self.gate_b = linear(c_z, c_hidden, init="gating")
        self.gate_out = linear(c_z, c_z, init="gating")
        self.norm_out = nn.LayerNorm(c_hidden)
        self.proj_out = linear(c_hidden, c_z, init="zeros")

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
