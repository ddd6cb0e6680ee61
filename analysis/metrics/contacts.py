"""Residue contact precision from a predicted distogram (CASP's definition), a structure metric that needs no
sampler: what the trunk knows about the fold, read directly from its distogram head.

A contact is a pair of residues whose Cβ atoms (Cα for glycine) are closer than 8 Å. Pairs of one chain with
sequence separation ≥ ``min_separation`` (CASP: ≥ 24 long range, ≥ 12 medium and long) are ranked by the
predicted contact probability (the distogram's mass below 8 Å) and the precision of the top L/5 is reported,
L the number of residues. Deterministic given the logits; its uncertainty is the spread over structures.

    p = contact_probability(logits, edges)                      # (B, N, N)
    precision = top_l_precision(p[0], d_true, candidates, n_residues=L)   # float, NaN with no candidate pair
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CONTACT_DISTANCE = 8.0  # Å, Cβ–Cβ (CASP)


def contact_probability(logits: Tensor, edges: Tensor, threshold: float = CONTACT_DISTANCE) -> Tensor:
    """P(d < ``threshold``) from distogram logits (..., K) with K − 1 interior bin edges ``edges`` (Å): bin 0 holds
    d < edges[0], bin k holds [edges[k−1], edges[k]), the last d ≥ edges[−1]. The bin that straddles the threshold
    counts with the fraction of its width below it (uniform within the bin)."""
    probs = logits.float().softmax(-1)
    edges = edges.to(probs.device, torch.float32)
    lower = torch.cat([edges.new_tensor([-math.inf]), edges])
    upper = torch.cat([edges, edges.new_tensor([math.inf])])
    width = (upper - lower).clamp(min=1e-6)
    below = torch.where(upper <= threshold, 1.0, torch.where(lower >= threshold, 0.0, (threshold - lower) / width))
    return (probs * below).sum(-1)


def top_l_precision(p_contact: Tensor, d_true: Tensor, candidates: Tensor, *, n_residues: int,
                    divisor: int = 5, threshold: float = CONTACT_DISTANCE) -> float:
    """Precision of the ``n_residues // divisor`` (at least 1) most probable candidate pairs.

    p_contact, d_true (N, N): predicted probability and true distance (Å) of each token pair; candidates (N, N)
    bool: the pairs that may be ranked (each unordered pair once, e.g. i < j). Fewer candidates than the quota:
    all of them are scored; none: NaN (the crop cannot say)."""
    k = max(1, n_residues // divisor)
    p = p_contact[candidates]
    if p.numel() == 0:
        return math.nan
    top = torch.topk(p, min(k, p.numel())).indices
    return float((d_true[candidates][top] < threshold).float().mean())


def contact_candidates(residue_index: Tensor, asym_id: Tensor, usable: Tensor, min_separation: int) -> Tensor:
    """(N, N) bool: pairs i < j of usable residues (protein tokens with a resolved Cβ/Cα) in the same chain with
    |residue_index_i − residue_index_j| ≥ ``min_separation``."""
    n = residue_index.shape[0]
    upper = torch.ones(n, n, dtype=torch.bool, device=residue_index.device).triu(1)
    same_chain = asym_id[:, None] == asym_id[None, :]
    separated = (residue_index[:, None] - residue_index[None, :]).abs() >= min_separation
    return upper & same_chain & separated & usable[:, None] & usable[None, :]
