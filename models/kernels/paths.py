"""The implementations triangle attention can run, and how each is called: ``torch`` (the pure-PyTorch
reference), ``triton`` (this package's kernels) and ``cueq`` (cuEquivariance). No choice is made here:
``models.kernels.dispatch`` decides which path runs, ``models.kernels.self_check`` checks a path against the
reference; both call it through :func:`run_path`, so what is checked is what runs."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

Impl = Literal["auto", "torch", "triton", "cueq"]
IMPLS: tuple[str, ...] = get_args(Impl)
Path = Literal["torch", "triton", "cueq"]  # what ``auto`` resolves to

# What the Triton kernels accept.
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MAX_TRITON_HEAD_DIM = 128


def run_path(
    path: Path, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None, *, variant: str,
    bias_activation: str = "relu",
) -> Tensor:
    """Triangle attention on ``path`` (shapes as ``models.kernels.dispatch.triangle_attention``); the additive
    form runs the reference on every path (it has no kernel)."""
    if path == "cueq":
        from models.kernels.cueq import cueq_triangle_attention

        return cueq_triangle_attention(q, k, v, bias, mask, scale=q.shape[-1] ** -0.5)
    if path == "torch" or variant == "additive":
        from models.triangle_attention_ref import triangle_attention_torch

        if mask is None:
            mask = torch.ones(q.shape[:2] + q.shape[3:4], dtype=torch.bool, device=q.device)
        return triangle_attention_torch(q, k, v, bias, mask, variant=variant, bias_activation=bias_activation)

    from models.kernels.ops import gated_attention, vanilla_attention

    scale = q.shape[-1] ** -0.5
    # The kernels read the bias along keys; the module's bias is a (B, J, J, H) projection permuted to
    # (B, H, J, J), stride H along keys. One O(n²) copy here, which autograd undoes for the gradient.
    bias = bias.contiguous()
    if variant == "vanilla":
        return vanilla_attention(q, k, v, bias, mask, scale)
    return gated_attention(q, k, v, torch.sigmoid(bias), mask, scale)
