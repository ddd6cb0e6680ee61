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
        b, n_i, n_j, c = z.shape
        # Projections are computed channel-first, (B, 2h, N·N) = W (2h, c) @ zᵀ, so that every channel is one
        # contiguous (N × N) plane: the triangle products below are then plain batched matrix products over
        # (B, h), with no permute copies in forward or backward (CPU speed, BENCHMARKS.md).
        z_t = z.reshape(b, n_i * n_j, c).transpose(1, 2)  # (B, c, N·N), a view
        mask = pair_mask.reshape(b, 1, n_i * n_j).to(z.dtype)
        a = self._gated(z_t, self.proj_a, self.gate_a, mask).view(b, -1, n_i, n_j)
        b_ = self._gated(z_t, self.proj_b, self.gate_b, mask).view(b, -1, n_i, n_j)
        if self.outgoing:
            x = torch.matmul(a, b_.transpose(-1, -2))  # Σ_k a_ik b_jk per channel
        else:
            x = torch.matmul(a.transpose(-1, -2), b_)  # Σ_k a_ki b_kj per channel
        x = self.norm_out(x.permute(0, 2, 3, 1))  # (B, N, N, h)
        return torch.sigmoid(self.gate_out(z)) * self.proj_out(x)

    @staticmethod
    def _gated(z_t: Tensor, proj: nn.Linear, gate: nn.Linear, mask: Tensor) -> Tensor:
        """σ(gate z) ⊙ (proj z) ⊙ mask, channel-first: z_t (B, c, P), mask (B, 1, P) -> (B, h, P).

        Two products rather than one on the stacked weights: the product kept for backward is then its own
        (B, h, P) tensor, not a view that would keep the whole (B, 2h, P) output alive."""
        return torch.sigmoid(torch.matmul(gate.weight, z_t)) * torch.matmul(proj.weight, z_t) * mask
