"""Training losses of AF3 (SPEC.md §2.7), all computed in fp32:

L = α_diff·(L_mse + α_bond·L_bond + L_smooth_lddt) + α_disto·L_disto + α_conf·(L_plddt + L_pae + L_pde + L_resolved),
where L_mse and L_bond each carry the copy's noise-level weight (σ²+σ_d²)/(σσ_d)² (AF3 SI eq. 6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.alignment import weighted_rigid_align
from models.confidence_metrics import PAE_MAX
from models.frames import aligned_errors, frame_atoms
from models.lddt import EXACT, THRESHOLDS, lddt, pair_distances, smooth_lddt_loss
from models.modules.atom_attention import tokens_to_atoms
from models.modules.heads import distogram_edges

# α_bond and α_pae are stage weights (AF3 SI §4: 0 in initial training, 1 in fine-tuning); the defaults here keep
# both terms on for direct callers, the training loop passes each stage's values.
AF3_WEIGHTS: dict[str, float] = {"diffusion": 4.0, "distogram": 0.03, "confidence": 1e-4, "bond": 1.0, "pae": 1.0}


def atom_flags(batch: dict[str, Tensor], name: str) -> Tensor:
    """A token flag broadcast to atoms: (B, A) bool."""
    return torch.gather(batch[name], 1, batch["atom_to_token"])


def atom_loss_weights(batch: dict[str, Tensor]) -> Tensor:
    """1 + 5·is_dna + 5·is_rna + 10·is_ligand per atom (B, A)."""
    return (
        1.0
        + 5.0 * atom_flags(batch, "is_dna").float()
        + 5.0 * atom_flags(batch, "is_rna").float()
        + 10.0 * atom_flags(batch, "is_ligand").float()
    )


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    mask = mask.float()
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def edm_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """(σ²+σ_d²)/(σσ_d)², the noise-level weight of L_MSE and L_bond in AF3's diffusion loss (SI eq. 6:
    L = w(σ)·(L_MSE + α_bond·L_bond) + L_smooth_lddt). sigma (B, D) Å -> (B, D) Å⁻²."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def mse_loss(x_pred: Tensor, x_true: Tensor, sigma: Tensor, batch: dict, sigma_data: float) -> Tensor:
    """Weighted aligned MSE, per (example, copy) scaled by (σ²+σ_d²)/(σσ_d)², averaged.

    x_pred, x_true (B, D, A, 3) Å; sigma (B, D) Å. The truth is aligned onto the (detached) prediction."""
    mask = batch["atom_mask"] & batch["gt_atom_mask"]
    w = atom_loss_weights(batch) * mask
    w_copies = w[:, None].expand(-1, x_pred.shape[1], -1)
    aligned = weighted_rigid_align(x_true, x_pred, w_copies)
    per_atom = w[:, None] * (x_pred.float() - aligned).pow(2).sum(-1)
    per_copy = per_atom.sum(-1) / (3.0 * mask.float().sum(-1, keepdim=True).clamp(min=1.0))
    return (per_copy * edm_weight(sigma, sigma_data)).mean()


MAX_BOND_LENGTH = 2.6  # Å; a polymer atom farther than this from its bonded ligand atom is not the bond partner


def _single_atom_tokens(batch: dict[str, Tensor]) -> Tensor:
    counts = torch.zeros(batch["token_mask"].shape, device=batch["atom_mask"].device)
    counts = counts.scatter_add(1, batch["atom_to_token"], batch["atom_mask"].float())
    return batch["token_mask"] & (counts == 1)


def bonded_atom_pairs(batch: dict[str, Tensor], *, polymer_bonds: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Atom index pairs (B, P) of the bonds the bond loss scores and their mask (B, P) bool.

    ``token_bonds`` joins tokens. Between two single-atom tokens (ligand atoms, atoms of modified residues) the
    bond is between their atoms. With ``polymer_bonds`` (AF3's L_bond) a bond between a single-atom token and a
    polymer residue token is scored too: the residue's partner atom is the feature contract's missing piece, so
    it is taken as the residue's resolved atom nearest to the ligand atom in the reference structure (a covalent
    bond is the closest contact; pairs farther than MAX_BOND_LENGTH are dropped). Bonds between two residue
    tokens (disulfides) are not scored, as in AF3. Only the listed bonds are gathered: no (N, N) or (A, A)
    coordinate tensors."""
    single = _single_atom_tokens(batch)
    bonds = torch.triu(batch["token_bonds"] & batch["token_mask"][:, :, None] & batch["token_mask"][:, None], 1)
    both = bonds & single[:, :, None] & single[:, None, :]
    mixed = bonds & (single[:, :, None] ^ single[:, None, :]) if polymer_bonds else torch.zeros_like(bonds)
    b_idx, ti, tj = (both | mixed).nonzero(as_tuple=True)
    centre = batch["token_center_atom"]
    li, mi = centre[b_idx, ti], centre[b_idx, tj]
    is_mixed = mixed[b_idx, ti, tj]
    if bool(is_mixed.any()):
        # the polymer side: the residue's atom closest to the single atom, in the reference structure
        lig_is_i = single[b_idx, ti]
        lig_tok, res_tok = torch.where(lig_is_i, ti, tj), torch.where(lig_is_i, tj, ti)
        lig_atom = centre[b_idx, lig_tok]
        x = batch["gt_coords"].float()
        resolved = batch["atom_mask"] & batch["gt_atom_mask"]
        in_res = (batch["atom_to_token"][b_idx] == res_tok[:, None]) & resolved[b_idx]  # (E, A)
        d = (x[b_idx] - x[b_idx, lig_atom][:, None]).norm(dim=-1).masked_fill(~in_res, float("inf"))
        nearest_d, nearest = d.min(-1)
        li = torch.where(is_mixed, lig_atom, li)
        mi = torch.where(is_mixed, nearest, mi)
        keep = ~is_mixed | (nearest_d < MAX_BOND_LENGTH)
        b_idx, li, mi = b_idx[keep], li[keep], mi[keep]
    b = batch["token_mask"].shape[0]
    counts = torch.bincount(b_idx, minlength=b)
    p = max(1, int(counts.max()) if len(b_idx) else 1)
    slot = torch.arange(len(b_idx), device=b_idx.device) - (torch.cumsum(counts, 0) - counts)[b_idx]
    l_out = torch.zeros((b, p), dtype=torch.long, device=b_idx.device)
    m_out, valid = torch.zeros_like(l_out), torch.zeros((b, p), dtype=torch.bool, device=b_idx.device)
    l_out[b_idx, slot], m_out[b_idx, slot], valid[b_idx, slot] = li, mi, True
    return l_out, m_out, valid


def bond_loss(x_pred: Tensor, x_true: Tensor, batch: dict, *, polymer_bonds: bool = True,
              sigma: Tensor | None = None, sigma_data: float = 16.0) -> Tensor:
    """AF3 L_bond: mean over bonded atom pairs (see :func:`bonded_atom_pairs`) of
    (|x_l - x_m| - |x*_l - x*_m|)², Å²; 0 without bonds. x_pred, x_true (B, D, A, 3).

    With ``sigma`` (B, D) it is the term of the diffusion loss: per (example, copy) the mean over its bonds
    (0 for an example without bonds) times the copy's noise-level weight ``edm_weight`` (AF3 SI eq. 6 puts
    L_bond inside that weight, beside L_MSE), averaged over examples and copies like :func:`mse_loss`."""
    li, mi, valid = bonded_atom_pairs(batch, polymer_bonds=polymer_bonds)
    resolved = batch["gt_atom_mask"] & batch["atom_mask"]
    valid = valid & torch.gather(resolved, 1, li) & torch.gather(resolved, 1, mi)
    if not bool(valid.any()):
        return x_pred.new_zeros(())
    err = (pair_distances(x_pred.float(), li, mi) - pair_distances(x_true.float(), li, mi)).pow(2)
    if sigma is None:
        return _masked_mean(err, valid[:, None].expand_as(err))
    v = valid[:, None].float()  # (B, 1, P)
    per_copy = (err * v).sum(-1) / v.sum(-1).clamp(min=1.0)  # (B, D)
    return (per_copy * edm_weight(sigma, sigma_data)).mean()


def distogram_loss(logits: Tensor, batch: dict) -> Tensor:
    """Cross-entropy of distogram logits (B, N, N, bins) against binned true distances between the tokens'
    distogram atoms, over pairs of real tokens whose atoms are resolved."""
    atom = batch["token_disto_atom"]
    x = torch.gather(batch["gt_coords"].float(), 1, atom[..., None].expand(-1, -1, 3))
    ok = torch.gather(batch["gt_atom_mask"], 1, atom) & batch["token_mask"]
    target = torch.bucketize(torch.cdist(x, x, compute_mode=EXACT), distogram_edges(logits.shape[-1], device=x.device))
    ce = F.cross_entropy(logits.float().permute(0, 3, 1, 2), target, reduction="none")
    return _masked_mean(ce, ok[:, :, None] & ok[:, None, :])


def plddt_target(x_pred: Tensor, batch: dict) -> tuple[Tensor, Tensor]:
    """AF3's pLDDT target (SI §4.3.1): per atom l (B, S, A), the lDDT of its distances to the token centre atoms
    m (CA, C1', each ligand atom) of other tokens with reference distance < 15 Å, or < 30 Å when m is a
    nucleotide's; and the mask (B, A) of atoms it is defined for (resolved, with at least one partner).
    Pairs are (A, N), never (A, A)."""
    x_true = batch["gt_coords"].float()
    resolved = batch["gt_atom_mask"] & batch["atom_mask"]
    centre = batch["token_center_atom"]
    n_samples = x_pred.shape[1]
    rep_ok = batch["token_mask"] & torch.gather(resolved, 1, centre)  # (B, N)
    rep_true = torch.gather(x_true, 1, centre[..., None].expand(-1, -1, 3))
    rep_pred = torch.gather(x_pred.float(), 2, centre[:, None, :, None].expand(-1, n_samples, -1, 3))
    nucleotide = batch["is_dna"] | batch["is_rna"]
    cutoff = torch.where(nucleotide, 30.0, 15.0)[:, None, :]  # radius of the partner m
    d_true = torch.cdist(x_true, rep_true, compute_mode=EXACT)  # (B, A, N)
    other = batch["atom_to_token"][:, :, None] != torch.arange(centre.shape[1], device=centre.device)
    pair = resolved[:, :, None] & rep_ok[:, None, :] & (d_true < cutoff) & other
    delta = (torch.cdist(x_pred.float(), rep_pred, compute_mode=EXACT) - d_true[:, None]).abs()  # (B, S, A, N)
    score = sum((delta < t).float() for t in THRESHOLDS) / len(THRESHOLDS)
    w = pair[:, None].float()
    n = w.sum(-1)
    return (score * w).sum(-1) / n.clamp(min=1.0), resolved & (pair.sum(-1) > 0)


def confidence_targets(x_pred: Tensor, batch: dict) -> dict[str, Tensor]:
    """Targets from a rollout x_pred (B, S, A, 3): per-atom lDDT (B, S, A), PAE and PDE errors (B, S, N, N) Å,
    and the masks they apply to. PAE uses AF3's frames (``models.frames``); PDE and PAE measure token
    centre atoms."""
    x_true = batch["gt_coords"].float()[:, None].expand_as(x_pred)
    resolved = batch["gt_atom_mask"] & batch["atom_mask"]
    plddt, plddt_mask = plddt_target(x_pred, batch)

    centre = batch["token_center_atom"]
    n_samples = x_pred.shape[1]
    idx = centre[:, None, :, None].expand(-1, n_samples, -1, 3)
    cp, ct = torch.gather(x_pred.float(), 2, idx), torch.gather(x_true, 2, idx)
    token_ok = batch["token_mask"] & torch.gather(resolved, 1, centre)
    pair_ok = token_ok[:, :, None] & token_ok[:, None, :]
    pde = (torch.cdist(cp, cp, compute_mode=EXACT) - torch.cdist(ct, ct, compute_mode=EXACT)).abs()

    frames, frame_ok = frame_atoms(batch)
    pae = aligned_errors(x_pred.float(), x_true, frames, centre)
    return {
        "plddt": plddt,
        "plddt_mask": plddt_mask,
        "pde": pde,
        "pde_mask": pair_ok,
        "pae": pae,
        "pae_mask": frame_ok[:, :, None] & pair_ok,
    }


def _binned_ce(logits: Tensor, value: Tensor, lo: float, hi: float, mask: Tensor) -> Tensor:
    n_bins = logits.shape[-1]
    target = ((value - lo) / (hi - lo) * n_bins).floor().long().clamp(0, n_bins - 1)
    ce = F.cross_entropy(logits.float().movedim(-1, 1), target, reduction="none")
    return _masked_mean(ce, mask.expand_as(ce))


def confidence_losses(outputs: dict, batch: dict) -> dict[str, Tensor]:
    """plddt, pae, pde, resolved cross-entropies on the detached rollout ``outputs["x_rollout"]``."""
    t = confidence_targets(outputs["x_rollout"].detach(), batch)
    resolved_target = batch["gt_atom_mask"].long()[:, None].expand(outputs["resolved_logits"].shape[:-1])
    resolved_ce = F.cross_entropy(
        outputs["resolved_logits"].float().movedim(-1, 1), resolved_target, reduction="none"
    )
    return {
        "plddt": _binned_ce(outputs["plddt_logits"], t["plddt"], 0.0, 1.0, t["plddt_mask"][:, None]),
        "pae": _binned_ce(outputs["pae_logits"], t["pae"], 0.0, PAE_MAX, t["pae_mask"][:, None]),
        "pde": _binned_ce(outputs["pde_logits"], t["pde"], 0.0, PAE_MAX, t["pde_mask"][:, None]),
        "resolved": _masked_mean(resolved_ce, batch["atom_mask"][:, None].expand_as(resolved_ce)),
    }


def compute_losses(
    outputs: dict[str, Tensor],
    batch: dict[str, Tensor],
    *,
    weights: dict[str, float] | None = None,
    confidence: bool = False,
    polymer_bonds: bool = True,
    sigma_data: float = 16.0,
) -> dict[str, Tensor]:
    """All losses from ``SeedFold.forward`` outputs. Keys: loss, mse, bond, smooth_lddt, distogram and, with
    ``confidence``, plddt, pae, pde, resolved. ``weights`` overrides AF3_WEIGHTS (diffusion, distogram,
    confidence, bond, pae). ``polymer_bonds`` adds ligand-polymer bonds to the bond loss (AF3's L_bond; whether
    and when the bond term counts is the recipe's per-stage weight ``bond``)."""
    w = {**AF3_WEIGHTS, **(weights or {})}
    with torch.autocast(outputs["x_denoised"].device.type, enabled=False):
        x_pred, x_true = outputs["x_denoised"].float(), outputs["x_gt_aug"].float()
        mask = batch["atom_mask"] & batch["gt_atom_mask"]
        nucleotide = atom_flags(batch, "is_dna") | atom_flags(batch, "is_rna")
        out = {
            "mse": mse_loss(x_pred, x_true, outputs["sigma"].float(), batch, sigma_data),
            "bond": bond_loss(x_pred, x_true, batch, polymer_bonds=polymer_bonds, sigma=outputs["sigma"].float(),
                              sigma_data=sigma_data),
            "smooth_lddt": smooth_lddt_loss(x_pred, x_true, mask, nucleotide).mean(),
            "distogram": distogram_loss(outputs["distogram_logits"], batch),
        }
        total = (
            w["diffusion"] * (out["mse"] + w["bond"] * out["bond"] + out["smooth_lddt"])
            + w["distogram"] * out["distogram"]
        )
        if confidence:
            conf = confidence_losses(outputs, batch)
            out.update(conf)
            terms = conf["plddt"] + conf["pde"] + conf["resolved"] + w["pae"] * conf["pae"]
            total = total + w["confidence"] * terms
        out["loss"] = total
    return out


__all__ = ["AF3_WEIGHTS", "compute_losses", "confidence_losses", "lddt", "tokens_to_atoms"]
