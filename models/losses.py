"""Training losses of AF3 (SPEC.md §2.7), all computed in fp32:

L = α_diff·(L_mse + L_bond + L_smooth_lddt) + α_disto·L_disto + α_conf·(L_plddt + L_pae + L_pde + L_resolved).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.alignment import weighted_rigid_align
from models.confidence_metrics import PAE_MAX
from models.lddt import lddt, smooth_lddt_loss
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


def mse_loss(x_pred: Tensor, x_true: Tensor, sigma: Tensor, batch: dict, sigma_data: float) -> Tensor:
    """Weighted aligned MSE, per (example, copy) scaled by (σ²+σ_d²)/(σσ_d)², averaged.

    x_pred, x_true (B, D, A, 3) Å; sigma (B, D) Å. The truth is aligned onto the (detached) prediction."""
    mask = batch["atom_mask"] & batch["gt_atom_mask"]
    w = atom_loss_weights(batch) * mask
    w_copies = w[:, None].expand(-1, x_pred.shape[1], -1)
    aligned = weighted_rigid_align(x_true, x_pred, w_copies)
    per_atom = w[:, None] * (x_pred.float() - aligned).pow(2).sum(-1)
    per_copy = per_atom.sum(-1) / (3.0 * mask.float().sum(-1, keepdim=True).clamp(min=1.0))
    scale = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    return (per_copy * scale).mean()


def bonded_atom_pairs(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Atom index pairs (B, P) of bonds between single-atom (ligand) tokens and their mask (B, P) bool.

    Polymer-ligand bonds would need the polymer's bonded atom, which the feature contract does not carry."""
    lig = batch["is_ligand"] & batch["token_mask"]
    bonds = batch["token_bonds"] & lig[:, :, None] & lig[:, None, :]
    bonds = torch.triu(bonds, diagonal=1)
    n = bonds.shape[-1]
    flat = bonds.flatten(1)
    ti, tj = (
        torch.div(torch.arange(n * n, device=flat.device), n, rounding_mode="floor"),
        torch.arange(n * n, device=flat.device) % n,
    )
    centre = batch["token_center_atom"]
    return centre[:, ti], centre[:, tj], flat


def bond_loss(x_pred: Tensor, x_true: Tensor, batch: dict) -> Tensor:
    """Mean over bonded ligand atom pairs of (|x_l - x_m| - |x*_l - x*_m|)², Å²; 0 without bonds."""
    li, mi, valid = bonded_atom_pairs(batch)
    if not bool(valid.any()):
        return x_pred.new_zeros(())
    resolved = batch["gt_atom_mask"] & batch["atom_mask"]
    valid = valid & torch.gather(resolved, 1, li) & torch.gather(resolved, 1, mi)

    def lengths(x: Tensor) -> Tensor:
        d = x.shape[1]
        xl = torch.gather(x, 2, li[:, None, :, None].expand(-1, d, -1, 3))
        xm = torch.gather(x, 2, mi[:, None, :, None].expand(-1, d, -1, 3))
        return (xl - xm).norm(dim=-1)

    err = (lengths(x_pred.float()) - lengths(x_true.float())).pow(2)
    return _masked_mean(err, valid[:, None].expand_as(err))


def distogram_loss(logits: Tensor, batch: dict) -> Tensor:
    """Cross-entropy of distogram logits (B, N, N, bins) against binned true distances between the tokens'
    distogram atoms, over pairs of real tokens whose atoms are resolved."""
    atom = batch["token_disto_atom"]
    x = torch.gather(batch["gt_coords"].float(), 1, atom[..., None].expand(-1, -1, 3))
    ok = torch.gather(batch["gt_atom_mask"], 1, atom) & batch["token_mask"]
    target = torch.bucketize(torch.cdist(x, x), distogram_edges(logits.shape[-1], device=x.device))
    ce = F.cross_entropy(logits.float().permute(0, 3, 1, 2), target, reduction="none")
    return _masked_mean(ce, ok[:, :, None] & ok[:, None, :])


def _token_frames(x: Tensor, neighbours: Tensor) -> tuple[Tensor, Tensor]:
    """Frames from (a, b, c) = (nearest, self, second nearest) token centres: origin (..., N, 3) and rotation
    (..., N, 3, 3) with rows e1, e2, e3 (AF3's ligand frame construction, used here for every token)."""
    a = torch.gather(x, -2, neighbours[..., 0:1].expand(*neighbours.shape[:-1], 3))
    c = torch.gather(x, -2, neighbours[..., 1:2].expand(*neighbours.shape[:-1], 3))
    w1, w2 = F.normalize(a - x, dim=-1), F.normalize(c - x, dim=-1)
    e1 = F.normalize(w1 + w2, dim=-1)
    e2 = F.normalize(w2 - w1, dim=-1)
    return x, torch.stack([e1, e2, torch.cross(e1, e2, dim=-1)], dim=-2)


def confidence_targets(x_pred: Tensor, batch: dict) -> dict[str, Tensor]:
    """Targets from a rollout x_pred (B, S, A, 3): per-atom lDDT (B, S, A), PAE and PDE errors (B, S, N, N) Å,
    and the masks they apply to."""
    x_true = batch["gt_coords"].float()[:, None].expand_as(x_pred)
    resolved = batch["gt_atom_mask"] & batch["atom_mask"]
    same_token = batch["atom_to_token"][:, :, None] == batch["atom_to_token"][:, None, :]
    plddt = lddt(x_pred, x_true, resolved[:, None], exclude=same_token[:, None], per_atom=True)

    centre = batch["token_center_atom"]
    n_samples = x_pred.shape[1]
    idx = centre[:, None, :, None].expand(-1, n_samples, -1, 3)
    cp, ct = torch.gather(x_pred.float(), 2, idx), torch.gather(x_true, 2, idx)
    token_ok = batch["token_mask"] & torch.gather(resolved, 1, centre)
    pair_ok = token_ok[:, :, None] & token_ok[:, None, :]
    pde = (torch.cdist(cp, cp) - torch.cdist(ct, ct)).abs()

    d_true = torch.cdist(ct[:, 0], ct[:, 0]).masked_fill(~pair_ok, float("inf"))
    d_true = d_true + torch.diag_embed(torch.full_like(d_true[..., 0], float("inf")))
    neighbours = d_true.topk(2, dim=-1, largest=False).indices  # (B, N, 2)
    frame_ok = token_ok & torch.isfinite(d_true.topk(2, dim=-1, largest=False).values).all(-1)
    nb = neighbours[:, None].expand(-1, n_samples, -1, -1)
    errors = []
    for x in (cp, ct):
        origin, rot = _token_frames(x, nb)
        local = torch.einsum("bsiuk,bsijk->bsiju", rot, x[:, :, None] - origin[:, :, :, None])
        errors.append(local)
    pae = (errors[0] - errors[1]).norm(dim=-1)
    return {
        "plddt": plddt,
        "plddt_mask": resolved,
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
    sigma_data: float = 16.0,
) -> dict[str, Tensor]:
    """All losses from ``SeedFold.forward`` outputs. Keys: loss, mse, bond, smooth_lddt, distogram and, with
    ``confidence``, plddt, pae, pde, resolved. ``weights`` overrides AF3_WEIGHTS (diffusion, distogram,
    confidence, bond, pae)."""
    w = {**AF3_WEIGHTS, **(weights or {})}
    with torch.autocast(outputs["x_denoised"].device.type, enabled=False):
        x_pred, x_true = outputs["x_denoised"].float(), outputs["x_gt_aug"].float()
        mask = batch["atom_mask"] & batch["gt_atom_mask"]
        nucleotide = atom_flags(batch, "is_dna") | atom_flags(batch, "is_rna")
        out = {
            "mse": mse_loss(x_pred, x_true, outputs["sigma"].float(), batch, sigma_data),
            "bond": bond_loss(x_pred, x_true, batch),
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
