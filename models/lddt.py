"""All-atom lDDT in pure torch (validation metric and the pLDDT target), and AF3's smooth lDDT loss."""

from __future__ import annotations

import torch
from torch import Tensor

THRESHOLDS = (0.5, 1.0, 2.0, 4.0)  # Å


def _pair_weights(true: Tensor, mask: Tensor, cutoff: Tensor | float, exclude: Tensor | None) -> Tensor:
    """Scored pairs (..., A, A): both atoms real, l != m, reference distance < cutoff, not excluded."""
    d_true = torch.cdist(true, true)
    pair = mask[..., :, None] & mask[..., None, :] & (d_true < cutoff)
    pair = pair & ~torch.eye(true.shape[-2], dtype=torch.bool, device=true.device)
    if exclude is not None:
        pair = pair & ~exclude
    return pair


def lddt(
    pred: Tensor,
    true: Tensor,
    mask: Tensor,
    *,
    cutoff: float = 15.0,
    exclude: Tensor | None = None,
    per_atom: bool = False,
) -> Tensor:
    """lDDT of pred (..., A, 3) against true (..., A, 3) Å over real atoms ``mask`` (..., A) bool.

    Pools over pairs (global lDDT) unless ``per_atom`` (returns (..., A); atoms without partners get 1).
    ``exclude`` (..., A, A) bool removes pairs (e.g. intra-residue). Predicted positions of masked atoms are
    ignored, so missing model atoms should be marked by setting ``mask`` from the reference only and the
    caller decides how to score them.
    """
    pred, true = pred.float(), true.float()
    pair = _pair_weights(true, mask, cutoff, exclude)
    delta = (torch.cdist(pred, pred) - torch.cdist(true, true)).abs()
    score = sum((delta < t).float() for t in THRESHOLDS) / len(THRESHOLDS)
    w = pair.float()
    if per_atom:
        n = w.sum(-1)
        return torch.where(n > 0, (score * w).sum(-1) / n.clamp(min=1.0), torch.ones_like(n))
    return (score * w).sum((-1, -2)) / w.sum((-1, -2)).clamp(min=1.0)


def smooth_lddt_loss(pred: Tensor, true: Tensor, mask: Tensor, is_nucleotide: Tensor) -> Tensor:
    """AF3 Algorithm 27: 1 - smooth lDDT, per example and copy. pred, true (B, D, A, 3) Å; mask (B, A) bool;
    is_nucleotide (B, A) bool gives the 30 Å inclusion radius to pairs whose reference atom is DNA/RNA."""
    cutoff = torch.where(is_nucleotide, 30.0, 15.0)[:, None, None, :]  # radius of atom m
    pair = _pair_weights(true, mask[:, None], cutoff, None).float()
    delta = (torch.cdist(pred, pred) - torch.cdist(true, true)).abs()
    eps = sum(torch.sigmoid(t - delta) for t in THRESHOLDS) / len(THRESHOLDS)
    return 1.0 - (eps * pair).sum((-1, -2)) / pair.sum((-1, -2)).clamp(min=1.0)
