"""Every loss is zero or at its analytic minimum where it should be, and grows when it should."""

import biotite.structure as struc
import numpy as np
import pytest
import torch

from models.alignment import weighted_rigid_align
from models.lddt import THRESHOLDS, lddt, smooth_lddt_loss
from models.losses import bond_loss, compute_losses, confidence_targets, distogram_loss, mse_loss
from models.modules.heads import distogram_edges
from models.sampling import random_rotations
from tests.models.conftest import collate, random_example


@pytest.fixture
def batch():
    return collate([random_example(12, seed=0), random_example(10, seed=1)])


def _rigid(x: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rot = random_rotations(x.shape[:-2], generator=g)
    return torch.einsum("...ij,...aj->...ai", rot, x) + 5.0 * torch.randn(*x.shape[:-2], 1, 3, generator=g)


def test_alignment_recovers_a_rigid_motion():
    x = torch.randn(3, 40, 3, generator=torch.Generator().manual_seed(0)) * 10
    moved = _rigid(x, seed=1)
    torch.testing.assert_close(weighted_rigid_align(x, moved, torch.ones(3, 40)), moved, rtol=1e-4, atol=1e-4)


def test_mse_of_truth_against_moved_truth_is_zero(batch):
    x = batch["gt_coords"][:, None].expand(-1, 4, -1, -1)
    sigma = torch.full((2, 4), 5.0)
    assert float(mse_loss(_rigid(x, seed=2), x, sigma, batch, 16.0)) < 1e-8
    noisy = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    # 1 Å noise per axis: ≈ 1 Å² per axis (minus what alignment absorbs), times (σ²+σ_d²)/(σσ_d)² = 0.0439
    assert 0.8 * 0.0439 < float(mse_loss(noisy, x, sigma, batch, 16.0)) < 1.05 * 0.0439


def test_smooth_lddt_of_truth_is_its_analytic_minimum(batch):
    x = batch["gt_coords"][:, None]
    mask = batch["atom_mask"]
    loss = smooth_lddt_loss(_rigid(x, seed=3), x, mask, torch.zeros_like(mask))
    minimum = 1 - sum(torch.sigmoid(torch.tensor(t)) for t in THRESHOLDS) / 4
    torch.testing.assert_close(loss, torch.full_like(loss, float(minimum)), rtol=1e-5, atol=1e-5)
    worse = smooth_lddt_loss(x * 1.3, x, mask, torch.zeros_like(mask))
    assert bool((worse > loss + 0.1).all())


def test_distogram_loss_vanishes_for_confident_correct_logits(batch):
    atom = batch["token_disto_atom"]
    x = torch.gather(batch["gt_coords"], 1, atom[..., None].expand(-1, -1, 3))
    target = torch.bucketize(torch.cdist(x, x), distogram_edges(64))
    logits = 50.0 * torch.nn.functional.one_hot(target, 64).float()
    assert float(distogram_loss(logits, batch)) < 1e-6
    assert float(distogram_loss(torch.zeros_like(logits), batch)) == pytest.approx(np.log(64), rel=1e-5)


def test_bond_loss_counts_only_ligand_bonds():
    ex = random_example(8, atoms_per_token=1, seed=4)
    ex["is_ligand"][:] = True
    ex["is_protein"][:] = False
    batch = collate([ex])
    x = batch["gt_coords"][:, None]
    assert float(bond_loss(x, x, batch)) == 0.0
    stretched = x.clone()
    stretched[0, 0, 5] += (x[0, 0, 5] - x[0, 0, 1]) * 0.5  # bond 1-5 is the only bond
    d = float((x[0, 0, 5] - x[0, 0, 1]).norm())
    assert float(bond_loss(stretched, x, batch)) == pytest.approx((0.5 * d) ** 2, rel=1e-4)


def test_bond_loss_in_the_diffusion_loss_carries_the_noise_level_weight():
    """AF3 SI eq. 6: w(σ)·(L_MSE + α_bond·L_bond), w(σ) = (σ²+σ_d²)/(σσ_d)², per copy."""
    ex = random_example(8, atoms_per_token=1, seed=4)
    ex["is_ligand"][:] = True
    ex["is_protein"][:] = False
    batch = collate([ex])
    x = batch["gt_coords"][:, None].expand(-1, 2, -1, -1)
    stretched = x.clone()
    stretched[0, 0, 5] += (x[0, 0, 5] - x[0, 0, 1]) * 0.5  # copy 0: bond 1-5 stretched; copy 1 exact
    d2 = float((x[0, 0, 5] - x[0, 0, 1]).norm()) ** 2
    sigma = torch.tensor([[4.0, 160.0]])
    w0 = (4.0**2 + 16.0**2) / (4.0 * 16.0) ** 2  # 0.06640625 Å⁻²
    expected = (w0 * 0.25 * d2 + 0.0) / 2  # mean over the two copies
    assert float(bond_loss(stretched, x, batch, sigma=sigma, sigma_data=16.0)) == pytest.approx(expected, rel=1e-4)
    out = {"x_denoised": stretched, "x_gt_aug": x, "sigma": sigma,
           "distogram_logits": torch.zeros(1, 8, 8, 64)}
    losses = compute_losses(out, batch, weights={"bond": 1.0})
    assert float(losses["bond"]) == pytest.approx(expected, rel=1e-4)


def test_lddt_matches_biotite(batch):
    true = batch["gt_coords"][0]
    pred = true + torch.randn(true.shape, generator=torch.Generator().manual_seed(5)) * 0.8
    residue = batch["atom_to_token"][0]
    ours = lddt(pred, true, batch["atom_mask"][0], exclude=residue[:, None] == residue[None, :])
    atoms = struc.AtomArray(true.shape[0])
    atoms.coord = true.numpy()
    atoms.res_id = residue.numpy() + 1
    atoms.chain_id = np.full(true.shape[0], "A")
    atoms.element = np.full(true.shape[0], "C")
    ref = struc.lddt(atoms, pred.numpy().astype(np.float32), exclude_same_residue=True)
    assert float(ours) == pytest.approx(float(ref), abs=1e-5)
    assert float(lddt(true, true, batch["atom_mask"][0])) == 1.0


def test_confidence_targets_of_truth_are_perfect(batch):
    x = _rigid(batch["gt_coords"][:, None].expand(-1, 2, -1, -1), seed=6)
    t = confidence_targets(x, batch)
    assert float((t["pae"] * t["pae_mask"][:, None]).abs().max()) < 1e-3
    assert float((t["pde"] * t["pde_mask"][:, None]).abs().max()) < 1e-3
    assert bool((t["plddt"][:, :, :30] == 1).all())


def test_compute_losses_keys_and_fp32(batch):
    out = {
        "x_denoised": batch["gt_coords"][:, None].repeat(1, 2, 1, 1).bfloat16(),
        "x_gt_aug": batch["gt_coords"][:, None].repeat(1, 2, 1, 1),
        "sigma": torch.full((2, 2), 10.0),
        "distogram_logits": torch.zeros(2, 12, 12, 64),
    }
    losses = compute_losses(out, batch)
    assert set(losses) == {"loss", "mse", "bond", "smooth_lddt", "distogram"}
    assert all(v.dtype == torch.float32 for v in losses.values())
    expected = 4.0 * (losses["mse"] + losses["bond"] + losses["smooth_lddt"]) + 0.03 * losses["distogram"]
    torch.testing.assert_close(losses["loss"], expected)
