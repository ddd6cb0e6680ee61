"""Triangle multiplicative updates (AF3 Algorithms 12 and 13). Hidden width = config.tri_mul_c (= c_z by the
width rule, SPEC.md §2.3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.modules.primitives import linear, row_chunks


class TriangleMultiplication(nn.Module):
    """Outgoing (``outgoing=True``, Alg 12: z_ij += Σ_k a_ik b_jk) or incoming (Alg 13: Σ_k a_ki b_kj) edges.

    z (B, N, N, c_z), pair_mask (B, N, N) bool -> update (B, N, N, c_z).
    """

    def __init__(self, c_z: int, c_hidden: int, *, outgoing: bool, kernel_impl: str = "auto") -> None:
        super().__init__()
        self.outgoing = outgoing
        self.kernel_impl = kernel_impl  # "cueq": cuEquivariance's fused update on CUDA (models.kernels.cueq)
        self.norm_in = nn.LayerNorm(c_z)
        self.proj_a = linear(c_z, c_hidden)
        self.gate_a = linear(c_z, c_hidden, init="gating")
        self.proj_b = linear(c_z, c_hidden)
        self.gate_b = linear(c_z, c_hidden, init="gating")
        self.gate_out = linear(c_z, c_z, init="gating")
        self.norm_out = nn.LayerNorm(c_hidden)
        self.proj_out = linear(c_hidden, c_z, init="zeros")

        self.chunk_size: int | None = None  # set at inference by harness.predict.set_chunk_size

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        if self.kernel_impl == "cueq":
            from models.kernels.cueq import cueq_triangle_multiplication, cueq_unavailable

            why = cueq_unavailable(z.device)
            if why:
                from models.kernels import KernelUnavailableError

                raise KernelUnavailableError(f"kernel_impl='cueq' cannot run here: {why}")
            return cueq_triangle_multiplication(self, z, pair_mask)
        if self.chunk_size is not None and self.chunk_size < z.shape[1] and not torch.is_grad_enabled():
            return self._forward_chunked(z, pair_mask, self.chunk_size)
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

    @torch.no_grad()
    def _forward_chunked(self, z: Tensor, pair_mask: Tensor, chunk: int) -> Tensor:
        """The same values with bounded memory (inference): the hidden channels of a and b are made ``chunk``
        channels at a time and multiplied into one (B, h, N, N) buffer, and the output is made ``chunk`` rows
        at a time. Beyond z itself it holds the normalised z, that buffer and the output (each ≈ z's size
        when h = c_z), instead of the ~6 full-size (B, h, N, N) tensors of the training path."""
        z = self.norm_in(z)
        b, n_i, n_j, c = z.shape
        z_t = z.reshape(b, n_i * n_j, c).transpose(1, 2)
        mask = pair_mask.reshape(b, 1, n_i * n_j).to(z.dtype)
        h = self.proj_a.weight.shape[0]
        x = z.new_empty(b, h, n_i, n_j)
        for ch in row_chunks(h, chunk):
            a = self._gated_rows(z_t, self.proj_a.weight[ch], self.gate_a.weight[ch], mask).view(b, -1, n_i, n_j)
            b_ = self._gated_rows(z_t, self.proj_b.weight[ch], self.gate_b.weight[ch], mask).view(b, -1, n_i, n_j)
            x[:, ch] = torch.matmul(a, b_.transpose(-1, -2)) if self.outgoing else torch.matmul(a.transpose(-1, -2), b_)
            del a, b_
        out = z.new_empty(z.shape)
        x = x.permute(0, 2, 3, 1)  # (B, N, N, h), a view
        for r in row_chunks(n_i, chunk):
            out[:, r] = torch.sigmoid(self.gate_out(z[:, r])) * self.proj_out(self.norm_out(x[:, r]))
        return out

    @staticmethod
    def _gated_rows(z_t: Tensor, w_proj: Tensor, w_gate: Tensor, mask: Tensor) -> Tensor:
        gated = torch.sigmoid(torch.matmul(w_gate, z_t)) * torch.matmul(w_proj, z_t)
        return gated * mask.to(gated.dtype)

    @staticmethod
    def _gated(z_t: Tensor, proj: nn.Linear, gate: nn.Linear, mask: Tensor) -> Tensor:
        """σ(gate z) ⊙ (proj z) ⊙ mask, channel-first: z_t (B, c, P), mask (B, 1, P) -> (B, h, P).

        Two products rather than one on the stacked weights: the product kept for backward is then its own
        (B, h, P) tensor, not a view that would keep the whole (B, 2h, P) output alive. The mask takes the
        products' dtype: under bf16 autocast they are bf16 while z (a LayerNorm output) is fp32, and an fp32
        mask would promote a and b, and the triangle products after them, to fp32."""
        gated = torch.sigmoid(torch.matmul(gate.weight, z_t)) * torch.matmul(proj.weight, z_t)
        return gated * mask.to(gated.dtype)
