"""Triangle attention around the starting / ending node (AF3 Algorithms 14 and 15) in three variants
(docs/DESIGN.md §1.5): ``vanilla`` softmax with pair bias, ``additive`` and ``gated`` linear attention. Heads =
c_z / head_dim (width rule). The attention core is always ``models.kernels.triangle_attention(impl=kernel_impl)``,
which decides between the PyTorch reference and the kernels."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.kernels import triangle_attention
from models.kernels.layouts import split_heads
from models.modules.primitives import linear


def kernels_read_views(z: Tensor, impl: str) -> bool:
    """Whether the attention core is the kernels (on CUDA, or forced with impl="triton"), which read q, k, v in
    place when each is dense (``models.kernels.layouts``); the PyTorch core's products want contiguous k and v."""
    return impl != "torch" and (z.is_cuda or impl == "triton")


class TriangleAttention(nn.Module):
    """z (B, N, N, c_z), pair_mask (B, N, N) bool -> update (B, N, N, c_z).

    Starting node (Alg 14) attends along rows: for row i, keys z_ik, bias b_jk. Ending node (Alg 15) is the
    same on the transposed pair tensor. Linear variants normalise the attention output with a LayerNorm
    before the gate (no softmax denominator). ``chunk_size`` rows at a time bound memory at inference.
    """

    def __init__(
        self,
        c_z: int,
        n_heads: int,
        head_dim: int,
        *,
        starting: bool,
        variant: str = "vanilla",
        bias_activation: str = "relu",
        kernel_impl: str = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        self.starting, self.variant, self.bias_activation = starting, variant, bias_activation
        self.n_heads, self.head_dim, self.chunk_size = n_heads, head_dim, chunk_size
        self.kernel_impl = kernel_impl
        width = n_heads * head_dim
        self.norm = nn.LayerNorm(c_z)
        self.proj_qkv = linear(c_z, 3 * width)
        self.proj_bias = linear(c_z, n_heads)
        self.proj_gate = linear(c_z, width, init="gating")
        self.norm_attn = nn.LayerNorm(width) if variant != "vanilla" else None
        self.proj_out = linear(width, c_z, init="zeros")

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        if not self.starting:
            z, pair_mask = z.transpose(1, 2), pair_mask.transpose(1, 2)
        z = self.norm(z)
        b, n_i, n_j, _ = z.shape
        bias = self.proj_bias(z).permute(0, 3, 1, 2)  # (B, H, J, J)
        kernels = kernels_read_views(z, self.kernel_impl)
        chunk = self.chunk_size or n_i
        outs = []
        for start in range(0, n_i, chunk):
            rows = slice(start, start + chunk)
            if kernels:
                q, k, v = split_heads(z[:, rows], self.proj_qkv.weight, self.n_heads, self.head_dim)
            else:
                qkv = self.proj_qkv(z[:, rows]).view(b, -1, n_j, 3, self.n_heads, self.head_dim)
                q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(dim=0)  # (B, I, H, J, D) views
                # One copy each of k and v; q stays a view since its scaling makes a copy anyway.
                k, v = k.contiguous(), v.contiguous()
            o = triangle_attention(
                q, k, v, bias, pair_mask[:, rows], variant=self.variant, bias_activation=self.bias_activation,
                impl=self.kernel_impl,
            )
            o = o.transpose(2, 3).reshape(b, -1, n_j, self.n_heads * self.head_dim)
            if self.norm_attn is not None:
                o = self.norm_attn(o)
            outs.append(self.proj_out(torch.sigmoid(self.proj_gate(z[:, rows])) * o))
        out = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        return out if self.starting else out.transpose(1, 2)


class TriangleAttentionStartingNode(TriangleAttention):
    """AF3 Algorithm 14 (in the configured variant): each row i attends over its edges z_ik."""

    def __init__(self, c_z: int, n_heads: int, head_dim: int, **kwargs) -> None:
        super().__init__(c_z, n_heads, head_dim, starting=True, **kwargs)


class TriangleAttentionEndingNode(TriangleAttention):
    """AF3 Algorithm 15 (in the configured variant): Algorithm 14 on the transposed pair tensor."""

    def __init__(self, c_z: int, n_heads: int, head_dim: int, **kwargs) -> None:
        super().__init__(c_z, n_heads, head_dim, starting=False, **kwargs)
