"""Confidence logits -> pLDDT, PAE, PDE, pTM, ipTM; AF3's clash flag and ranking score (AF3 SI §5.9)."""

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


CLASH_DISTANCE = 1.1  # Å, AF3: polymer atoms closer than this clash
CLASH_MIN_ATOMS = 100  # a chain with more clashing atoms than this clashes
CLASH_MIN_FRACTION = 0.5  # ... or with more than this fraction of its atoms clashing


def has_clash(coords: Tensor, batch: dict[str, Tensor], *, chunk: int = 1024) -> Tensor:
    """AF3's clash flag (SI §5.9.2) per sample (B, S) bool from coords (B, S, A, 3) Å.

    Over polymer atoms only: an atom clashes when another polymer atom lies within 1.1 Å and belongs to another
    chain or to a residue more than one position away; a structure clashes when some chain has more than 100
    clashing atoms or more than half of its atoms clashing. Rows are processed ``chunk`` atoms at a time, so
    memory is (B, S, chunk, A)."""
    polymer = batch["is_protein"] | batch["is_rna"] | batch["is_dna"]
    to_token = batch["atom_to_token"]
    atom_ok = batch["atom_mask"] & torch.gather(polymer, 1, to_token)  # (B, A)
    chain = torch.gather(batch["asym_id"], 1, to_token)
    residue = torch.gather(batch["residue_index"], 1, to_token)
    x = coords.float()
    n_atoms = x.shape[2]
    clashing = torch.zeros(x.shape[:3], dtype=torch.bool, device=x.device)  # (B, S, A)
    for lo in range(0, n_atoms, chunk):
        hi = min(lo + chunk, n_atoms)
        close = torch.cdist(x[:, :, lo:hi], x) < CLASH_DISTANCE  # (B, S, c, A)
        apart = (chain[:, lo:hi, None] != chain[:, None]) | (
            (residue[:, lo:hi, None] - residue[:, None]).abs() > 1
        )
        pair_ok = atom_ok[:, lo:hi, None] & atom_ok[:, None] & apart  # (B, c, A)
        clashing[:, :, lo:hi] = (close & pair_ok[:, None]).any(-1)
    clashing = clashing & atom_ok[:, None]
    n_chains = batch["asym_id"].shape[1] + 1  # ids are at most the token count; empty chains flag nothing
    per_chain = torch.zeros((*x.shape[:2], n_chains), device=x.device)
    index = chain[:, None].expand(-1, x.shape[1], -1)
    per_chain = per_chain.scatter_add(2, index, clashing.float())
    size = torch.zeros((x.shape[0], n_chains), device=x.device).scatter_add(1, chain, atom_ok.float())
    fraction = per_chain / size[:, None].clamp(min=1.0)
    return ((per_chain > CLASH_MIN_ATOMS) | (fraction > CLASH_MIN_FRACTION)).any(-1)


def ranking_score(
    ptm: Tensor, iptm: Tensor, multichain: Tensor, fraction_disordered: Tensor, clash: Tensor
) -> Tensor:
    """AF3's ranking score (SI §5.9.3): 0.8·ipTM + 0.2·pTM (pTM alone for one chain) + 0.5·fraction
    disordered − 100·has_clash; all (B, S) except multichain (B, 1) bool."""
    base = torch.where(multichain, 0.8 * iptm + 0.2 * ptm, ptm)
    return base + 0.5 * fraction_disordered - 100.0 * clash.float()


def summarize_confidence(
    logits: dict[str, Tensor], batch: dict[str, Tensor], config: ModelConfig, coords: Tensor | None = None
) -> dict:
    """pLDDT (B, S, A) in [0, 100], PAE / PDE (B, S, N, N) Å, pTM, ipTM (B, S), ``multichain`` (B, 1) and, given
    ``coords`` (B, S, A, 3), ``has_clash`` (B, S). The ranking score needs the disorder fraction, which needs
    the structure's surface: ``harness.predict`` combines them with :func:`ranking_score`."""
    token_mask, asym = batch["token_mask"], batch["asym_id"]
    device = token_mask.device
    pair = token_mask[:, :, None] & token_mask[:, None, :]
    inter = pair & (asym[:, :, None] != asym[:, None, :])
    ptm = tm_score(logits["pae_logits"], token_mask, pair)
    iptm = tm_score(logits["pae_logits"], token_mask, inter)
    multichain = inter.flatten(1).any(-1)[:, None]
    out = {
        "plddt": 100.0 * expected(logits["plddt_logits"], bin_centres(0.0, 1.0, config.n_plddt_bins, device)),
        "pae": expected(logits["pae_logits"], bin_centres(0.0, PAE_MAX, config.n_pae_bins, device)),
        "pde": expected(logits["pde_logits"], bin_centres(0.0, PAE_MAX, config.n_pde_bins, device)),
        "ptm": ptm,
        "iptm": iptm,
        "multichain": multichain,
        **{k: v for k, v in logits.items()},
    }
    if coords is not None:
        out["has_clash"] = has_clash(coords, batch)
    return out
