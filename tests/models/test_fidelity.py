"""AF3 fidelity of the confidence head's geometry, the ranking score and the sparse losses, against oracles:
frames of known geometry, constructed clashes, the dense smooth lDDT, hand-computed bond errors."""

import math

import numpy as np
import pytest
import torch

from models.confidence_metrics import has_clash, ranking_score
from models.frames import aligned_errors, build_frames, frame_atoms
from models.lddt import smooth_lddt_loss, smooth_lddt_loss_dense
from models.losses import atom_loss_weights, bond_loss, bonded_atom_pairs, confidence_targets, plddt_target
from models.modules.heads import N_CONFIDENCE_DISTANCE_BINS, confidence_distance_edges
from models.sampling import random_rotations
from tests.models.conftest import collate, random_example
from tests.models.real_entries import real_batch


def _rigid(x: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rot = random_rotations(x.shape[:-2], generator=g)
    return torch.einsum("...ij,...aj->...ai", rot, x) + 5.0 * torch.randn(*x.shape[:-2], 1, 3, generator=g)


def test_confidence_distance_bins_are_af3s_1_25_angstrom_steps():
    edges = confidence_distance_edges()
    assert len(edges) == N_CONFIDENCE_DISTANCE_BINS - 1 == 38
    torch.testing.assert_close(edges[1:] - edges[:-1], torch.full((37,), 1.25))
    assert float(edges[0]) == 4.5 and float(edges[-1]) == 50.75


def test_frame_axes_of_a_known_triangle():
    # b at the origin, a and c at ±45° from +x in the xy-plane: e1 = +x, e2 = -y, e3 = e1 x e2 = -z
    x = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.0]]])[:, None] * 1.5
    origin, rot = build_frames(x, torch.tensor([[[0, 1, 2]]]))
    torch.testing.assert_close(origin[0, 0, 0], torch.zeros(3))
    torch.testing.assert_close(rot[0, 0, 0], torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]]))


def test_protein_frames_are_n_ca_c_and_pae_sees_a_moved_residue():
    batch = collate([random_example(12, seed=0)])  # atoms N, CA, C per token
    idx, valid = frame_atoms(batch)
    assert bool(valid.all())
    torch.testing.assert_close(idx[0, 3], torch.tensor([9, 10, 11]))
    x = batch["gt_coords"][:, None]
    moved = _rigid(x, seed=1)
    pae0 = aligned_errors(moved, x, idx, batch["token_center_atom"])
    assert float(pae0.abs().max()) < 1e-4  # a rigid motion leaves every aligned error at 0
    shift = torch.tensor([0.0, 3.0, 4.0])  # |shift| = 5 Å
    pred = x.clone()
    pred[0, 0, 15:18] += shift  # residue 5 translated as a whole
    pae = aligned_errors(pred, x, idx, batch["token_center_atom"])[0, 0]
    others = [i for i in range(12) if i != 5]
    torch.testing.assert_close(pae[others, 5], torch.full((11,), 5.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(pae[5, 5], torch.tensor(0.0), atol=1e-4, rtol=0)
    # residue 5's own frame moved with it: every other token is off by the same 5 Å in that frame
    torch.testing.assert_close(pae[5, others], torch.full((11,), 5.0), atol=1e-4, rtol=0)


def test_ligand_frames_use_nearest_atoms_and_mask_colinear_and_lonely_atoms():
    ex = random_example(7, atoms_per_token=1, seed=2)
    ex["is_ligand"][:] = True
    ex["is_protein"][:] = False
    ex["asym_id"] = torch.tensor([1, 1, 1, 2, 2, 2, 3])
    ex["gt_coords"] = torch.tensor([
        [0.0, 0, 0], [1.5, 0, 0], [3.0, 0, 0],      # chain 1: a straight line (angle 180°)
        [0.0, 20, 0], [1.5, 20, 0], [1.5, 21.5, 0],  # chain 2: a right angle at atom 4
        [50.0, 0, 0],                                # chain 3: a lone ion
    ])  # fmt: skip
    ex["token_center_atom"] = ex["token_disto_atom"] = torch.arange(7)
    idx, valid = frame_atoms(collate([ex]))
    assert valid[0].tolist() == [False, False, False, True, True, True, False]
    assert idx[0, 4].tolist() in ([3, 4, 5], [5, 4, 3])  # b is the atom itself, a/c its two nearest


def test_nucleotide_frames_are_c1_c3_c4_on_real_dna():
    batch = real_batch("2q2k")  # protein + DNA duplex
    idx, valid = frame_atoms(batch)
    chars = batch["ref_atom_name_chars"][0]
    names = ["".join(chr(int(c) + 32) for c in row).strip() for row in chars]
    dna = torch.nonzero(batch["is_dna"][0] & (batch["atom_to_token"][0].bincount() > 1)).flatten()
    assert len(dna) > 10
    for t in dna.tolist():
        assert [names[i] for i in idx[0, t].tolist()] == ["C1'", "C3'", "C4'"]
    protein = torch.nonzero(batch["is_protein"][0]).flatten()[:5]
    for t in protein.tolist():
        assert [names[i] for i in idx[0, t].tolist()] == ["N", "CA", "C"]
    assert float(valid[0, dna].float().mean()) > 0.9


def test_plddt_target_is_one_for_the_truth_and_uses_30_angstroms_for_nucleotide_partners():
    batch = real_batch("2q2k")
    x = _rigid(batch["gt_coords"][:, None], seed=3)
    target, mask = plddt_target(x, batch)
    assert bool((target[0, 0][mask[0]] > 1 - 1e-6).all())


@pytest.mark.parametrize("partner_is_dna", [False, True])
def test_plddt_partners_within_15_angstroms_or_30_for_nucleotides(partner_is_dna):
    ex = random_example(6, atoms_per_token=1, seed=8)
    ex = {k: v[:3, :3] if k == "token_bonds" else v for k, v in ex.items()}
    ex = {k: v[:, :3] if k in ("msa", "msa_mask", "has_deletion", "deletion_value") else v[:3] for k, v in ex.items()}
    ex["gt_coords"] = torch.tensor([[0.0, 0, 0], [20.0, 0, 0], [100.0, 0, 0]])
    ex["token_center_atom"] = ex["token_disto_atom"] = torch.arange(3)
    ex["is_dna"][1] = partner_is_dna
    ex["is_protein"][1] = not partner_is_dna
    batch = collate([ex])
    x = batch["gt_coords"][:, None].clone()
    target, mask = plddt_target(x, batch)
    # atom 0 sees token 1 (20 Å away) only when token 1 is a nucleotide; atom 1 sees atom 0 (a protein centre)
    # at 20 Å > 15 Å never
    assert mask[0].tolist() == [partner_is_dna, False, False]
    x[0, 0, 1, 0] += 3.0  # 3 Å error on the pair: thresholds 4 Å pass, 0.5/1/2 fail -> lDDT 1/4
    target, _ = plddt_target(x, batch)
    if partner_is_dna:
        assert float(target[0, 0, 0]) == pytest.approx(0.25)


def test_confidence_targets_of_truth_are_perfect_on_a_real_complex():
    batch = real_batch("7cth_hl")  # antibody chains + a NAG glycan (ligand frames)
    x = _rigid(batch["gt_coords"][:, None], seed=4)
    t = confidence_targets(x, batch)
    assert float(t["pae_mask"].float().mean()) > 0.5
    assert float((t["pae"] * t["pae_mask"][:, None]).max()) < 1e-2
    assert float((t["pde"] * t["pde_mask"][:, None]).max()) < 1e-2


def _two_chains(gap: float, n_atoms: int = 120) -> dict:
    """Two one-atom-per-token protein chains of ``n_atoms`` atoms each, 3.8 Å apart along x, chain B ``gap`` Å
    above chain A."""
    ex = random_example(2 * n_atoms, atoms_per_token=1, seed=5)
    ex["asym_id"] = torch.tensor([1] * n_atoms + [2] * n_atoms)
    ex["residue_index"] = torch.arange(n_atoms).repeat(2)
    xs = torch.arange(n_atoms, dtype=torch.float32) * 3.8
    a = torch.stack([xs, torch.zeros(n_atoms), torch.zeros(n_atoms)], -1)
    ex["gt_coords"] = torch.cat([a, a + torch.tensor([0.0, 0.0, gap])])
    return collate([ex])


def test_clash_flag_on_constructed_clashes():
    apart = _two_chains(gap=10.0)
    x = apart["gt_coords"][:, None]
    assert not bool(has_clash(x, apart).any())
    overlap = _two_chains(gap=0.5)  # every atom within 1.1 Å of the other chain: 120 > 100 clashing atoms
    assert bool(has_clash(overlap["gt_coords"][:, None], overlap).all())
    few = _two_chains(gap=0.5, n_atoms=10)  # 10 atoms < 100, but 100% > 50% of the chain
    assert bool(has_clash(few["gt_coords"][:, None], few).all())
    partial = _two_chains(gap=10.0, n_atoms=10)
    x = partial["gt_coords"][:, None].clone()
    x[0, 0, 10:14, 2] = 0.5  # 4 of 10 atoms of chain B over chain A: 40%, and 4 (+4) atoms: no clash
    assert not bool(has_clash(x, partial).any())
    x[0, 0, 10:16, 2] = 0.5  # 6 of 10: 60% > 50%
    assert bool(has_clash(x, partial).all())


def test_clash_ignores_bonded_neighbours_and_ligands():
    batch = _two_chains(gap=10.0, n_atoms=20)
    x = batch["gt_coords"][:, None].clone()
    x[0, 0, :20, 0] = torch.arange(20) * 1.0  # chain A compressed to 1 Å steps: neighbours only, |Δres| = 1
    assert not bool(has_clash(x, batch).any())
    batch["is_protein"][0, 20:] = False
    batch["is_ligand"][0, 20:] = True
    x[0, 0, 20:, :] = x[0, 0, :20, :]  # a "ligand" right on top of chain A: not a polymer clash
    assert not bool(has_clash(x, batch).any())


def test_ranking_score_is_af3s_formula():
    ptm, iptm = torch.tensor([[0.6, 0.6]]), torch.tensor([[0.5, 0.5]])
    dis, clash = torch.tensor([[0.2, 0.2]]), torch.tensor([[False, True]])
    multi = ranking_score(ptm, iptm, torch.tensor([[True]]), dis, clash)
    torch.testing.assert_close(multi, torch.tensor([[0.8 * 0.5 + 0.2 * 0.6 + 0.1, 0.8 * 0.5 + 0.2 * 0.6 + 0.1 - 100]]))
    mono = ranking_score(ptm, iptm, torch.tensor([[False]]), dis, clash)
    torch.testing.assert_close(mono, torch.tensor([[0.7, 0.7 - 100]]))


def _three_noisy_copies(entry: str):
    """pred (1, 3, A, 3): three rigidly moved copies of a real entry with 0.3, 1 and 3 Å noise; true, mask,
    nucleotide flags."""
    batch = real_batch(entry)
    mask = batch["atom_mask"] & batch["gt_atom_mask"]
    nucleotide = torch.gather(batch["is_dna"] | batch["is_rna"], 1, batch["atom_to_token"])
    true = _rigid(batch["gt_coords"][:, None].expand(-1, 3, -1, -1), seed=6)
    g = torch.Generator().manual_seed(7)
    pred = true + torch.randn(true.shape, generator=g) * torch.tensor([0.3, 1.0, 3.0])[None, :, None, None]
    return pred, true, mask, nucleotide


@pytest.mark.parametrize("entry", ["1ake", "2q2k"])
def test_sparse_smooth_lddt_equals_dense_on_a_real_entry(entry):
    pred, true, mask, nucleotide = _three_noisy_copies(entry)
    with torch.no_grad():  # without autograd the loss takes its sparse form
        sparse = smooth_lddt_loss(pred, true, mask, nucleotide)
    dense = smooth_lddt_loss_dense(pred, true, mask, nucleotide)
    assert sparse.shape == (1, 3)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=0)
    assert float(sparse[0, 0]) < float(sparse[0, 1]) < float(sparse[0, 2])


def test_bond_loss_on_a_covalent_glycan_and_a_modified_residue():
    for entry, what in (("7cth_hl", "NAG C1 - ASN ND2"), ("2q2k", "5IU (modified dU) - DNA backbone")):
        batch = real_batch(entry)
        resolved = (batch["gt_atom_mask"] & batch["atom_mask"])[0]
        li, mi, valid = bonded_atom_pairs(batch)
        ok = valid[0] & resolved[li[0]] & resolved[mi[0]]
        pairs = list(zip(li[0, ok].tolist(), mi[0, ok].tolist(), strict=True))
        l2, m2, valid_lig = bonded_atom_pairs(batch, polymer_bonds=False)
        ligand_only = set(zip(l2[0, valid_lig[0]].tolist(), m2[0, valid_lig[0]].tolist(), strict=True))
        mixed = [p for p in pairs if p not in ligand_only]
        assert mixed, what  # ligand-polymer bonds join the loss
        x = batch["gt_coords"].float()
        lengths = torch.stack([(x[0, a] - x[0, b]).norm() for a, b in pairs])
        assert float(lengths.max()) < 2.2 and float(lengths.min()) > 1.0, what  # covalent bond lengths (C-I: 2.1 Å)
        truth = x[:, None]
        assert float(bond_loss(truth, truth, batch)) == 0.0
        # stretch a ligand-polymer bond: move its ligand-side atom 0.5 Å along the bond
        lig_atom, res_atom = mixed[0]
        pred = truth.clone()
        direction = (x[0, lig_atom] - x[0, res_atom]) / (x[0, lig_atom] - x[0, res_atom]).norm()
        pred[0, 0, lig_atom] += 0.5 * direction
        # moving one atom changes every bond it is in; the loss is the mean over all resolved bonds
        d_new = torch.stack([(pred[0, 0, a] - pred[0, 0, b]).norm() for a, b in pairs])
        expected = float(((d_new - lengths) ** 2).sum() / len(pairs))
        assert expected > 0.25 / len(pairs) - 1e-6
        assert float(bond_loss(pred, truth, batch)) == pytest.approx(expected, rel=1e-4), what
        assert float(bond_loss(pred, truth, batch, polymer_bonds=False)) < float(bond_loss(pred, truth, batch))


def test_modified_residue_atoms_are_not_weighted_as_ligand():
    batch = real_batch("2q2k")  # DNA with 5-iodo-deoxyuridines (5IU), tokenised per atom
    per_atom_tokens = batch["atom_to_token"][0].bincount(minlength=batch["token_mask"].shape[1]) == 1
    modified = per_atom_tokens & batch["token_mask"][0]
    assert int(modified.sum()) == 40  # two 5IU of 20 heavy atoms
    assert bool(batch["is_dna"][0][modified].all()) and not bool(batch["is_ligand"][0].any())
    w = atom_loss_weights(batch)[0]
    on_modified = modified[batch["atom_to_token"][0]]
    assert bool((w[on_modified] == 6.0).all())  # 1 + 5·is_dna, not 1 + 10·is_ligand


def test_colinear_threshold_is_25_degrees():
    from models.frames import colinear

    def bent(deg: float) -> bool:
        r = math.radians(deg)
        x = torch.tensor([[[1.0, 0, 0], [0, 0, 0], [math.cos(r), math.sin(r), 0]]])
        return bool(colinear(x, torch.tensor([[[0, 1, 2]]]))[0, 0])

    assert bent(20.0) and bent(160.0) and not bent(30.0) and not bent(90.0) and not bent(150.0)
    assert np.isclose(math.cos(math.radians(25.0)), 0.9063, atol=1e-4)


@pytest.mark.parametrize("entry", ["1ake", "2q2k"])
def test_blocked_smooth_lddt_equals_dense_with_gradients(entry, monkeypatch):
    """Under autograd the loss runs in checkpointed atom blocks (here forced to 3 blocks or more): values and
    gradients equal the dense (B, D, A, A) form."""
    import models.lddt as lddt_module

    noisy, true, mask, nucleotide = _three_noisy_copies(entry)
    n_atoms = true.shape[2]
    monkeypatch.setattr(lddt_module, "LDDT_BLOCK_ELEMENTS", 3 * n_atoms * (n_atoms // 3 - 1))
    assert lddt_module.lddt_block_rows(1, 3, n_atoms) < n_atoms / 3
    pred_blocked, pred_dense = noisy.clone().requires_grad_(), noisy.clone().requires_grad_()
    blocked = smooth_lddt_loss(pred_blocked, true, mask, nucleotide)
    dense = smooth_lddt_loss_dense(pred_dense, true, mask, nucleotide)
    torch.testing.assert_close(blocked, dense, atol=1e-5, rtol=0)
    blocked.sum().backward()
    dense.sum().backward()
    torch.testing.assert_close(pred_blocked.grad, pred_dense.grad, atol=1e-6, rtol=1e-4)
