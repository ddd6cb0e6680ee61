"""Weighted rigid alignment (AF3 Algorithm 28), fp32."""

from __future__ import annotations

import torch
from torch import Tensor


def weighted_rigid_align(x: Tensor, x_target: Tensor, weights: Tensor) -> Tensor:
    """Superpose ``x`` onto ``x_target`` minimising Σ w ||R x + t - x_target||²; returns R x + t, detached.

    x, x_target (..., A, 3) Å; weights (..., A) >= 0 (0 = ignored atom). Proper rotations only (no reflection).
    """
    x, x_target, w = x.detach().float(), x_target.detach().float(), weights.detach().float()[..., None]
    total = w.sum(-2, keepdim=True).clamp(min=1e-8)
    mu, mu_t = (w * x).sum(-2, keepdim=True) / total, (w * x_target).sum(-2, keepdim=True) / total
    xc, tc = x - mu, x_target - mu_t
    cov = torch.einsum("...ai,...aj->...ij", w * tc, xc)  # (..., 3, 3)
    u, _, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(cov[..., 0])
    fix[..., -1] = sign
    rot = u @ torch.diag_embed(fix) @ vh
    return torch.einsum("...ij,...aj->...ai", rot, xc) + mu_t
