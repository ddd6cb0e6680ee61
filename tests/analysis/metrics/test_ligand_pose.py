"""Ligand RMSD / lDDT-PLI against spyrmsd and analytic cases, on real protein–ligand entries."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from spyrmsd import rmsd as spy

from analysis.metrics.correspondence import CorrespondenceError
from analysis.metrics.ligand import LigandSelector, _ligand_graph_permutations, ligand_pose
from analysis.metrics.superpose import apply

LIGANDS = [("1pzp", "A:FTA:300"), ("7l39", "MBN")]
ATOMIC_NUMBER = {"C": 6, "N": 7, "O": 8, "F": 9, "P": 15, "S": 16, "CL": 17, "BR": 35, "I": 53}


def random_rotation(rng) -> np.ndarray:
    return Rotation.random(random_state=rng).as_matrix()


def _ligand_index(atoms, spec):
    return LigandSelector.parse(spec).residues(atoms)[0]


@pytest.mark.parametrize(("entry", "spec"), LIGANDS)
def test_identity_and_rigid_motion(load, rng, entry, spec):
    ref = load(entry)
    assert ligand_pose(ref, ref, spec).rmsd == pytest.approx(0.0, abs=1e-6)
    assert ligand_pose(ref, ref, spec).lddt_pli == 1.0
    moved = ref.copy()
    moved.coord = apply(ref.coord, random_rotation(rng), np.array([30.0, -5.0, 12.0])).astype(np.float32)
    score = ligand_pose(ref, moved, spec)
    assert score.rmsd == pytest.approx(0.0, abs=1e-3)
    assert score.lddt_pli == 1.0 and score.success


@pytest.mark.parametrize(("entry", "spec"), LIGANDS)
def test_rigid_3A_shift_of_ligand_gives_rmsd_3(load, entry, spec):
    ref = load(entry)
    model = ref.copy()
    model.coord[_ligand_index(ref, spec)] += np.array([0.0, 3.0, 0.0], dtype=np.float32)
    score = ligand_pose(ref, model, spec)
    assert score.rmsd == pytest.approx(3.0, abs=1e-5)
    assert not score.success
    assert score.lddt_pli < 0.8


@pytest.mark.parametrize(("entry", "spec"), LIGANDS)
def test_matches_spyrmsd(load, rng, entry, spec):
    ref = load(entry)
    lig = _ligand_index(ref, spec)
    model = ref.copy()
    model.coord[lig] += rng.normal(0.0, 0.9, (len(lig), 3)).astype(np.float32)
    bonds = ref.bonds[lig].as_array()[:, :2]
    adjacency = np.zeros((len(lig), len(lig)), dtype=int)
    adjacency[bonds[:, 0], bonds[:, 1]] = adjacency[bonds[:, 1], bonds[:, 0]] = 1
    numbers = np.array([ATOMIC_NUMBER[e] for e in ref.element[lig]])
    expected = spy.symmrmsd(ref.coord[lig].astype(float), model.coord[lig].astype(float), numbers, numbers,
                            adjacency, adjacency, center=False, minimize=False)  # fmt: skip
    assert ligand_pose(ref, model, spec).rmsd == pytest.approx(expected, abs=1e-3)


def test_symmetric_atom_renaming_is_undone(load):
    """Exchange the names of graph-equivalent atoms in the model: symmetry-corrected RMSD stays 0."""
    ref = load("1pzp")
    lig = _ligand_index(ref, "A:FTA:300")
    perms = _ligand_graph_permutations(ref, lig, 1000)
    assert len(perms) > 1
    perm = perms[1]
    model = ref.copy()
    model.atom_name[lig] = ref.atom_name[lig][perm]
    moved = np.flatnonzero(perm != np.arange(len(lig)))
    assert np.any(np.linalg.norm(ref.coord[lig][moved] - ref.coord[lig][perm[moved]], axis=-1) > 1.0)
    score = ligand_pose(ref, model, "A:FTA:300")
    assert score.rmsd == pytest.approx(0.0, abs=1e-5)
    assert score.lddt_pli == 1.0


def test_missing_ligand_or_atoms_raise(load):
    ref = load("7l39")
    lig = _ligand_index(ref, "MBN")
    without = np.ones(ref.array_length(), dtype=bool)
    without[lig] = False
    with pytest.raises(CorrespondenceError, match="model has no ligand MBN"):
        ligand_pose(ref, ref[without], "MBN")
    without[lig[:-2]] = True
    with pytest.raises(CorrespondenceError, match="lacks atoms"):
        ligand_pose(ref, ref[without], "MBN")
    with pytest.raises(CorrespondenceError, match="reference has no ligand"):
        ligand_pose(ref, ref, "XYZ")


def test_selector_parsing():
    assert LigandSelector.parse("A:FTA:300") == LigandSelector("FTA", "A", 300)
    assert LigandSelector.parse(" ATP ") == LigandSelector("ATP")
    for bad in ("", "A:B:C", "A::1", "1:2:3:4"):
        with pytest.raises(ValueError, match="expected 'CCD'"):
            LigandSelector.parse(bad)


def test_ligand_selected_by_chain(data_dir):
    """FoldBench names the ligand by its own label_asym_id (7L39: MBN is label chain D, author chain A)."""
    from analysis.structure_io import read_structure

    ref = read_structure(data_dir / "7l39.cif.gz", chain_ids="label")
    model = ref.copy()
    model.coord = model.coord + np.float32(0.3)
    by_chain = ligand_pose(ref, model, "D:*")
    assert by_chain == ligand_pose(ref, model, "D:MBN") and by_chain.ligand.startswith("D:MBN")
    assert LigandSelector.parse("D:*") == LigandSelector(None, "D")
    with pytest.raises(CorrespondenceError, match=r"reference has no ligand 'Q:\*'"):
        ligand_pose(ref, model, "Q:*")
