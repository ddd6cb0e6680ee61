"""The tensor layouts the triangle-attention kernels are given: one place, used by the model's module, the
self-check and the compile check, so the layouts checked are the layouts that run.

The kernels read q, k, v through their strides, but an output or gradient takes its input's layout
(``torch.empty_like``), so an input must be *dense* (a permutation of a contiguous tensor) to be read in place;
a slice of a stacked (…, 3·H·D) projection is not, and would be copied in forward and again in backward.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def split_heads(z: Tensor, weight: Tensor, n_heads: int, head_dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v (B, I, H, J, D) from z (B, I, J, c) and the stacked projection weight (3·H·D, c), rows q|k|v.

    One product per tensor: each result is a (J, H) transpose of its own contiguous (B, I, J, H, D) buffer,
    hence dense, with unit stride along D, and the kernels read it in place.
    """
    b, i, j, _ = z.shape
    q, k, v = (F.linear(z, w).view(b, i, j, n_heads, head_dim).transpose(2, 3) for w in weight.chunk(3))
    return q, k, v
