"""OpenStructure 2.8 conventions on real entries: symmetric binding-site names in lDDT-PLI, model contacts,
non-standard residues mapped to their parent, and the symmetry-resolved tensor lDDT used in validation."""

from __future__ import annotations

from pathlib import Path

import biotite.structure as struc
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from analysis.metrics.correspondence import ligand_mask
from analysis.metrics.lddt import lddt, lddt_torch
from analysis.metrics.ligand import LigandSelector, ligand_pose
from analysis.metrics.nonstandard import apply_nonstandard, ideal_cb, map_to_parent, parent_residue
from analysis.metrics.symmetry import SYMMETRIC_SIDE_CHAINS
from analysis.structure_io import read_structure
from models.features import RESTYPES

STARTER = Path(__file__).parents[3] / "harness" / "data" / "starter" / "structures"


def _noisy(atoms, seed, sigma):
    out = atoms.copy()
    out.coord = out.coord + np.random.default_rng(seed).normal(0, sigma, out.coord.shape).astype(np.float32)
    return out


def _swap_names(model, residues):
    """``model`` with the symmetric atom pairs of ``residues`` [(chain, res_id, name)] named the other way."""
    out = model.copy()
    for chain, res_id, name in residues:
        here = (out.chain_id == chain) & (out.res_id == res_id)
        for a, b in SYMMETRIC_SIDE_CHAINS[name]:
            ia, ib = np.flatnonzero(here & (out.atom_name == a)), np.flatnonzero(here & (out.atom_name == b))
            out.coord[ia], out.coord[ib] = model.coord[ib], model.coord[ia]
    return out


def _site_residues(ref, spec, names):
    lig = LigandSelector.parse(spec).residues(ref)[0]
    near = cKDTree(ref.coord[lig]).query(ref.coord)[0] < 6.0
    hits = near & np.isin(ref.res_name, names) & ~ligand_mask(ref)
    return sorted({(str(ref.chain_id[i]), int(ref.res_id[i]), str(ref.res_name[i])) for i in np.flatnonzero(hits)})


@pytest.mark.parametrize("entry,spec", [("7l39", "MBN"), ("1pzp", "A:FTA:300")])
@pytest.mark.parametrize("model_contacts", [False, True])
def test_lddt_pli_ignores_binding_site_naming(load, entry, spec, model_contacts):
    ref = load(entry)
    site = _site_residues(ref, spec, ["LEU", "PHE", "TYR"])
    assert len(site) >= 4  # 7l39: 4 LEU, TYR 88, PHE 153; 1pzp: 4 LEU
    model = _noisy(ref, 3, 0.4)
    swapped = _swap_names(model, site)
    kwargs = {"add_mdl_contacts": model_contacts}
    expected = ligand_pose(ref, model, spec, **kwargs).lddt_pli
    assert ligand_pose(ref, swapped, spec, **kwargs).lddt_pli == pytest.approx(expected, abs=1e-12)
    # Without the resolution the swapped names cost several points (what OST's scorer avoids).
    unresolved = ligand_pose(ref, swapped, spec, resolve_symmetry=False, **kwargs).lddt_pli
    assert unresolved < expected - 0.03


def test_model_contacts_penalise_atoms_moved_into_the_site(load):
    ref = load("7l39")
    lig = LigandSelector.parse("MBN").residues(ref)[0]
    centre = ref.coord[lig].mean(axis=0)
    # A lysine side chain far from the ligand in the reference, moved next to it in the model.
    polymer = ~ligand_mask(ref)
    far = polymer & (ref.res_name == "LYS") & (np.linalg.norm(ref.coord - centre, axis=1) > 15)
    nz = np.flatnonzero(far & (ref.atom_name == "NZ"))[0]
    model = ref.copy()
    model.coord[nz] = ref.coord[lig[0]] + np.array([0.0, 0.0, 3.0], dtype=np.float32)
    assert ligand_pose(ref, model, "MBN").lddt_pli == 1.0  # reference contacts only: unchanged
    with_model = ligand_pose(ref, model, "MBN", add_mdl_contacts=True)
    n_new = int((np.linalg.norm(ref.coord[lig] - model.coord[nz], axis=1) < 6.0).sum())
    assert n_new > 0
    assert with_model.lddt_pli == pytest.approx(with_model.n_pli_contacts / (with_model.n_pli_contacts + n_new))


def test_selenomethionine_scored_as_methionine():
    """4ZEY (starter set) has 3 MSE; OST maps them to MET (SE → SD) before scoring."""
    ref = read_structure(STARTER / "4zey.cif.gz")
    ref = ref[~ligand_mask(ref)]
    assert parent_residue("MSE") == "MET" and parent_residue("AIB") == "ALA" and parent_residue("LEU") is None
    mapped, counts = map_to_parent(ref)
    assert counts == {"MSE": 3}
    assert "MSE" not in set(mapped.res_name) and mapped.array_length() == ref.array_length()
    sd = (mapped.res_name == "MET") & (mapped.atom_name == "SD")
    assert np.array_equal(mapped.coord[sd], ref.coord[(ref.res_name == "MSE") & (ref.atom_name == "SE")])
    assert set(mapped.element[sd]) == {"S"}
    # A predictor writes MET: identical coordinates score 1 under the mapping, lower keeping MSE's own atoms.
    predicted = mapped.copy()
    assert lddt(apply_nonstandard(ref, "parent"), predicted).score == 1.0
    kept = lddt(apply_nonstandard(ref, "keep"), predicted).score
    assert 0.98 < kept < 1.0


def test_aib_maps_to_alanine_with_an_idealised_cb(load):
    """An AIB built from a real alanine of 1UBQ (CB → CB1, plus CB2): OST keeps N, CA, C, O, adds a CB."""
    ubq = load("1ubq")
    ubq = ubq[~ligand_mask(ubq)]
    ala = np.flatnonzero((ubq.res_name == "ALA") & (ubq.atom_name == "CA"))[0]
    here = (ubq.res_id == ubq.res_id[ala]) & (ubq.chain_id == ubq.chain_id[ala])
    aib = ubq.copy()
    aib.res_name[here] = "AIB"
    cb = np.flatnonzero(here & (aib.atom_name == "CB"))[0]
    aib.atom_name[cb] = "CB1"
    cb2 = aib[cb : cb + 1].copy()
    cb2.atom_name[:] = "CB2"
    n, ca, c = (ubq.coord[np.flatnonzero(here & (ubq.atom_name == k))[0]] for k in ("N", "CA", "C"))
    cb2.coord[:] = ideal_cb(c, ca, n)  # the other Cβ position (mirror chirality)
    order = np.insert(np.arange(aib.array_length()), cb + 1, aib.array_length())  # CB2 right after CB1
    aib = struc.concatenate([aib, cb2])[order]
    mapped, counts = map_to_parent(aib)
    assert counts == {"AIB": 1}
    residue = mapped[(mapped.res_id == ubq.res_id[ala]) & (mapped.chain_id == ubq.chain_id[ala])]
    assert set(residue.res_name) == {"ALA"} and sorted(residue.atom_name) == ["C", "CA", "CB", "N", "O"]
    assert np.linalg.norm(residue.coord[residue.atom_name == "CB"][0] - ubq.coord[cb]) < 0.35
    # The prediction (plain ALA) then matches exactly; keeping AIB's atoms loses its Cβ pairs.
    assert lddt(apply_nonstandard(aib, "parent"), ubq).score == 1.0
    assert lddt(apply_nonstandard(aib, "keep"), ubq).score < 1.0


def test_ideal_cb_matches_real_residues(load):
    ubq = load("1ubq")
    ubq = ubq[~ligand_mask(ubq) & (ubq.res_name != "GLY")]
    deviations = []
    for start in struc.get_residue_starts(ubq):
        residue = ubq[start:][ubq.res_id[start:] == ubq.res_id[start]]
        names = {str(n): i for i, n in enumerate(residue.atom_name)}
        if all(k in names for k in ("N", "CA", "C", "CB")):
            built = ideal_cb(*(residue.coord[names[k]] for k in ("N", "CA", "C")))
            deviations.append(np.linalg.norm(built - residue.coord[names["CB"]]))
    assert len(deviations) > 60 and np.mean(deviations) < 0.2 and np.max(deviations) < 0.4


def _features(atoms):
    """The batch features lddt_torch reads: token per residue, restype per token, atom-name characters."""
    starts = struc.get_residue_starts(atoms)
    token = torch.as_tensor(struc.get_residue_positions(atoms, np.arange(atoms.array_length())))
    restype = torch.tensor([RESTYPES.index(str(atoms.res_name[s])) for s in starts])
    chars = torch.tensor([[ord(ch) - 32 for ch in str(n).ljust(4)[:4]] for n in atoms.atom_name])
    return token, restype, chars


@pytest.mark.parametrize("entry", ["1ubq", "4i6p"])
def test_lddt_torch_resolves_symmetry_like_lddt(load, entry):
    ref = load(entry)
    ref = ref[~ligand_mask(ref)]
    model = _noisy(ref, 5, 0.5)
    starts = struc.get_residue_starts(ref)
    swappable = [(str(ref.chain_id[s]), int(ref.res_id[s]), str(ref.res_name[s])) for s in starts
                 if ref.res_name[s] in SYMMETRIC_SIDE_CHAINS]  # fmt: skip
    swapped = _swap_names(model, swappable)
    token, restype, chars = _features(ref)
    true, mask = torch.tensor(ref.coord), torch.ones(ref.array_length(), dtype=torch.bool)
    pred = torch.tensor(swapped.coord)
    plain = float(lddt_torch(pred, true, mask, atom_to_token=token))
    resolved = float(lddt_torch(pred, true, mask, atom_to_token=token, restype=restype, atom_name_chars=chars))
    # Same answer as the structure-level lDDT, with and without the resolution (old signature unchanged).
    assert resolved == pytest.approx(lddt(ref, swapped).score, abs=1e-6)
    assert plain == pytest.approx(lddt(ref, swapped, resolve_symmetry=False).score, abs=1e-6)
    assert resolved > plain + 0.02
    # Batched, with a second copy in the original naming: each row resolved on its own.
    batch = torch.stack([pred, torch.tensor(model.coord)])
    out = lddt_torch(batch, true.expand(2, -1, -1), mask.expand(2, -1), atom_to_token=token.expand(2, -1),
                     restype=restype.expand(2, -1), atom_name_chars=chars.expand(2, -1, -1))  # fmt: skip
    assert out[0].item() == pytest.approx(resolved, abs=1e-6)
    assert out[1].item() == pytest.approx(lddt(ref, model).score, abs=1e-6)
    with pytest.raises(ValueError, match="needs atom_to_token"):
        lddt_torch(pred, true, mask, restype=restype, atom_name_chars=chars)


def test_validation_lddt_is_symmetry_resolved_on_pipeline_features():
    """The validation estimator's lDDT (harness/train/validation.py) on features the data pipeline built."""
    from harness.data.example import build_example
    from harness.data.featurize import featurize
    from harness.train.validation import all_atom_lddt

    _, tokens, _ = build_example(STARTER / "1ubq.cif.gz", None)
    arrays = tokens.arrays
    batch = featurize(arrays, np.arange(len(arrays["restype"])), 4, np.random.default_rng(0))
    batch = {k: v[None] for k, v in batch.items()}
    names = ["".join(chr(c + 32) for c in row).strip() for row in batch["ref_atom_name_chars"][0].tolist()]
    res = [RESTYPES[t] for t in batch["restype"][0][batch["atom_to_token"][0]].tolist()]
    token = batch["atom_to_token"][0].numpy()
    true = batch["gt_coords"][0]
    noisy = true + torch.from_numpy(np.random.default_rng(2).normal(0, 0.5, tuple(true.shape))).float()
    swapped = noisy.clone()
    n_swapped = 0
    for t in np.unique(token):
        atoms = {names[i]: i for i in np.flatnonzero(token == t)}
        for a, b in SYMMETRIC_SIDE_CHAINS.get(res[atoms[next(iter(atoms))]], ()):
            swapped[atoms[a]], swapped[atoms[b]] = noisy[atoms[b]], noisy[atoms[a]]
            n_swapped += 1
    assert n_swapped > 20
    resolved = float(all_atom_lddt(swapped[None], batch)[0])
    assert resolved == pytest.approx(float(all_atom_lddt(noisy[None], batch)[0]), abs=1e-6)
    mask = batch["atom_mask"] & batch["gt_atom_mask"]
    plain = float(lddt_torch(swapped[None], batch["gt_coords"], mask, atom_to_token=batch["atom_to_token"]))
    assert resolved > plain + 0.02
