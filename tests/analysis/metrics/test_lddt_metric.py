"""lDDT against biotite's independent implementation, analytic cases and the symmetric-naming fix."""

from __future__ import annotations

import biotite.structure as struc
import numpy as np
import pytest
import torch

from analysis.metrics.correspondence import ligand_mask, polymer_chains
from analysis.metrics.lddt import lddt, lddt_torch


def _polymer(atoms):
    return atoms[~ligand_mask(atoms)]


def _noisy(atoms, rng, sigma):
    model = atoms.copy()
    model.coord = model.coord + rng.normal(0.0, sigma, model.coord.shape).astype(np.float32)
    return model


def test_identity_is_one(load):
    ref = _polymer(load("2q2k"))
    assert lddt(ref, ref).score == 1.0
    assert lddt(ref, ref, representative_only=True).score == 1.0
    assert lddt(ref, ref, interface_only=True).score == 1.0


@pytest.mark.parametrize("entry", ["1ubq", "4i6p", "2q2k"])
def test_matches_biotite_without_symmetry_swaps(load, rng, entry):
    ref = _polymer(load(entry))
    model = _noisy(ref, rng, 0.8)
    ours = lddt(ref, model, resolve_symmetry=False)
    assert ours.score == pytest.approx(struc.lddt(ref, model), abs=1e-9)
    biotite_chain = struc.lddt(ref, model, aggregation="chain")
    assert list(ours.per_chain.values()) == pytest.approx(list(biotite_chain), abs=1e-9)
    biotite_residue = struc.lddt(ref, model, aggregation="residue")
    np.testing.assert_allclose(ours.per_residue, biotite_residue, atol=1e-9)
    interface = lddt(ref, model, interface_only=True, resolve_symmetry=False)
    if entry != "1ubq":
        assert interface.score == pytest.approx(struc.lddt(ref, model, exclude_same_chain=True), abs=1e-9)


def test_representative_atoms_match_biotite_on_ca_c3prime(load, rng):
    ref = _polymer(load("2q2k"))
    model = _noisy(ref, rng, 1.5)
    keep = np.isin(ref.atom_name, ["CA", "C3'"])
    ours = lddt(ref, model, representative_only=True).score
    assert ours == pytest.approx(struc.lddt(ref[keep], model[keep]), abs=1e-9)
    assert 0.2 < ours < 0.95


def test_missing_model_atoms_count_as_not_preserved(load, rng):
    ref = _polymer(load("1ubq"))
    model = _noisy(ref, rng, 0.5)
    dropped = (model.res_id >= 10) & (model.res_id < 20)
    ours = lddt(ref, model[~dropped], resolve_symmetry=False).score
    with_nan = model.copy()
    with_nan.coord[dropped] = np.nan
    assert ours == pytest.approx(struc.lddt(ref, with_nan), abs=1e-9)
    assert ours < lddt(ref, model, resolve_symmetry=False).score - 0.05


def _swap_names(atoms, res_names=("ASP", "GLU", "PHE", "TYR", "LEU", "VAL", "ARG")):
    swapped = atoms.copy()
    table = {"OD1": "OD2", "OD2": "OD1", "OE1": "OE2", "OE2": "OE1", "CD1": "CD2", "CD2": "CD1",
             "CE1": "CE2", "CE2": "CE1", "CG1": "CG2", "CG2": "CG1", "NH1": "NH2", "NH2": "NH1"}  # fmt: skip
    for i in np.flatnonzero(np.isin(atoms.res_name, res_names)):
        name = str(atoms.atom_name[i])
        if name in table and not (atoms.res_name[i] in ("LEU",) and name.startswith("CG")):
            swapped.atom_name[i] = table[name]
    return swapped


def test_symmetric_naming_resolved_where_biotite_is_not(load, rng):
    """The same coordinates with OD1/OD2-style names exchanged: our lDDT is unchanged, biotite drops."""
    ref = _polymer(load("1ubq"))
    model = _noisy(ref, rng, 0.3)
    renamed = _swap_names(model)
    baseline = lddt(ref, model).score
    ours = lddt(ref, renamed)
    # biotite compares atoms in array order: reorder the renamed model to the reference's atom names.
    order = {(r, n): i for i, (r, n) in enumerate(zip(renamed.res_id, renamed.atom_name, strict=True))}
    aligned = renamed[[order[(r, n)] for r, n in zip(ref.res_id, ref.atom_name, strict=True)]]
    biotite_score = struc.lddt(ref, aligned)
    assert ours.n_swapped_residues >= 10
    assert ours.score == pytest.approx(baseline, abs=2e-3)
    assert ours.score > biotite_score + 0.01


def test_chain_mapping_recovers_swapped_chains(load, rng):
    """1KD8 is 3 copies each of two peptides; relabel A <-> B (different peptides) in the model."""
    ref = _polymer(load("1kd8"))
    model = _noisy(ref, rng, 0.3)
    ids = model.chain_id.copy()
    model.chain_id[ids == "A"] = "B"
    model.chain_id[ids == "B"] = "A"
    result = lddt(ref, model)
    truth = lddt(ref, model, chain_map={"A": "B", "B": "A", "C": "C", "D": "D", "E": "E", "F": "F"})
    assert result.score >= truth.score - 1e-12
    assert result.score > 0.9
    ref_chains, model_chains = polymer_chains(ref), polymer_chains(model)
    for ref_id, model_id in result.chain_map.items():
        assert ref_chains[ref_id].sequence[:34] == model_chains[model_id].sequence[:34]
    assert lddt(ref, model, strict=True).score < result.score - 0.05


def test_torch_matches_structure_api_and_batches(load, rng):
    ref = _polymer(load("1ubq"))
    models = [_noisy(ref, rng, s) for s in (0.3, 1.2)]
    residue = torch.tensor(struc.get_residue_positions(ref, np.arange(ref.array_length())))
    true = torch.tensor(ref.coord).expand(2, -1, -1)
    pred = torch.tensor(np.stack([m.coord for m in models]))
    mask = torch.ones(2, ref.array_length(), dtype=torch.bool)
    batched = lddt_torch(pred, true, mask, atom_to_token=residue.expand(2, -1), chunk_size=300)
    expected = [struc.lddt(ref, m) for m in models]
    np.testing.assert_allclose(batched.numpy(), expected, atol=1e-6)
    per_atom = lddt_torch(pred[0], true[0], mask[0], atom_to_token=residue, per_atom=True)
    np.testing.assert_allclose(per_atom.numpy(), struc.lddt(ref, models[0], aggregation="atom"), atol=1e-6)


def test_torch_masks_padding_and_missing_predictions():
    gen = torch.Generator().manual_seed(0)
    true = torch.randn(1, 40, 3, generator=gen) * 5
    pred = true + 0.1 * torch.randn(1, 40, 3, generator=gen)
    padded_true = torch.cat([true, torch.zeros(1, 10, 3)], dim=1)
    padded_pred = torch.cat([pred, torch.full((1, 10, 3), 100.0)], dim=1)
    mask = torch.cat([torch.ones(1, 40, dtype=torch.bool), torch.zeros(1, 10, dtype=torch.bool)], dim=1)
    full = lddt_torch(pred, true, torch.ones(1, 40, dtype=torch.bool))
    assert lddt_torch(padded_pred, padded_true, mask).item() == pytest.approx(full.item(), abs=1e-6)
    assert lddt_torch(true, true, torch.ones(1, 40, dtype=torch.bool)).item() == 1.0
    pred_mask = torch.ones(1, 40, dtype=torch.bool)
    pred_mask[0, :20] = False
    half = lddt_torch(true, true, torch.ones(1, 40, dtype=torch.bool), pred_mask=pred_mask).item()
    assert 0.0 < half < 0.5
    empty = lddt_torch(pred, true, torch.zeros(1, 40, dtype=torch.bool))
    assert torch.isnan(empty).all()
