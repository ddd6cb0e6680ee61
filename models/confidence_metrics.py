"""Confidence logits -> pLDDT, PAE, PDE, pTM, ipTM and the ranking score (AF3 §5.9)."""

from __future__ import annotations

import torch
from torch import Tensor

from models.config import ModelConfig

PAE_MAX = 32.0  # Å, upper edge of the PAE / PDE bins


def bin_centres(lo: float, hi: float, n_bins: int, device=None) -> Tensor:
    """Centres of n_bins equal bins spanning [lo, hi]."""
    width = (hi - lo) / n_bins
    return lo + width * (torch.arange(n_bins, device=device, dtype=torch.float32) + 0.5)


def expected(logits: Tensor, centres: Tensor) -> Tensor:
    return (torch.softmax(logits.float(), dim=-1) * centres).sum(-1)


def tm_score(pae_logits: Tensor, token_mask: Tensor, pair_mask: Tensor) -> Tensor:
    """max_i mean_j E[1/(1+(e_ij/d0)²)] over ``pair_mask`` (B, N, N); pae_logits (B, S, N, N, bins)."""
    n_bins = pae_logits.shape[-1]
    n_tokens = token_mask.sum(-1).float().clamp(min=19.0)
    d0 = 1.24 * (n_tokens - 15.0) ** (1.0 / 3.0) - 1.8  # (B,)
    centres = bin_centres(0.0, PAE_MAX, n_bins, device=pae_logits.device)
    f = 1.0 / (1.0 + (centres / d0[:, None]) ** 2)  # (B, bins)
    per_pair = (torch.softmax(pae_logits.float(), -1) * f[:, None, None, None]).sum(-1)  # (B, S, N, N)
    w = pair_mask[:, None].float()
    per_row = (per_pair * w).sum(-1) / w.sum(-1).clamp(min=1.0)
    per_row = per_row.masked_fill(~token_mask[:, None], 0.0)
    return per_row.max(-1).values


def summarize_confidence(logits: dict[str, Tensor], batch: dict[str, Tensor], config: ModelConfig) -> dict:
    token_mask, asym = batch["token_mask"], batch["asym_id"]
    device = token_mask.device
    pair = token_mask[:, :, None] & token_mask[:, None, :]
    inter = pair & (asym[:, :, None] != asym[:, None, :])
    ptm = tm_score(logits["pae_logits"], token_mask, pair)
    iptm = tm_score(logits["pae_logits"], token_mask, inter)
    multichain = inter.flatten(1).any(-1)[:, None]
    return {
        "plddt": 100.0 * expected(logits["plddt_logits"], bin_centres(0.0, 1.0, config.n_plddt_bins, device)),
        "pae": expected(logits["pae_logits"], bin_centres(0.0, PAE_MAX, config.n_pae_bins, device)),
        "pde": expected(logits["pde_logits"], bin_centres(0.0, PAE_MAX, config.n_pde_bins, device)),
        "ptm": ptm,
        "iptm": iptm,
        "ranking_score": torch.where(multichain, 0.8 * iptm + 0.2 * ptm, ptm),
        **{k: v for k, v in logits.items()},
    }
