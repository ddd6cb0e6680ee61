"""Triangle attention written as the paper's per-row formulas with explicit loops: the ground truth that both
the PyTorch reference and the Triton kernels are checked against (docs/DESIGN.md §1.5)."""

import torch
import torch.nn.functional as F
from torch import Tensor

PSI = {"relu": F.relu, "identity": lambda x: x, "softplus": F.softplus}


def naive_triangle_attention(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor, variant: str, bias_activation: str = "relu"
) -> Tensor:
    """q, k, v (B, I, H, J, D); bias (B, H, J, J); mask (B, I, J) bool. Returns (B, I, H, J, D)."""
    n_batch, n_rows, n_heads, _, d = q.shape
    out = torch.zeros_like(q)
    for b in range(n_batch):
        for i in range(n_rows):
            keep = mask[b, i]
            for h in range(n_heads):
                qi, ki, vi = q[b, i, h] * d**-0.5, k[b, i, h], v[b, i, h]
                if variant == "vanilla":
                    if not keep.any():
                        continue
                    logits = qi @ ki[keep].T + bias[b, h][:, keep]
                    out[b, i, h] = torch.softmax(logits, dim=-1) @ vi[keep]
                elif variant == "gated":
                    weights = F.relu(qi) @ F.relu(ki[keep]).T * torch.sigmoid(bias[b, h][:, keep])
                    out[b, i, h] = weights @ vi[keep]
                elif variant == "additive":
                    linear = F.relu(qi) @ (F.relu(ki[keep]).T @ vi[keep])
                    out[b, i, h] = linear + PSI[bias_activation](bias[b, h])[:, keep] @ vi[keep]
                else:
                    raise ValueError(variant)
    return out
