"""DockQ v2 against the DockQ 2.1.3 package (isolated venv), plus analytic cases."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analysis.metrics.correspondence import ligand_mask
from analysis.metrics.dockq import dockq, dockq_formula
from analysis.metrics.superpose import apply
from analysis.structure_io import read_structure, write_mmcif


def random_rotation(rng) -> np.ndarray:
    return Rotation.random(random_state=rng).as_matrix()


def _polymer(atoms):
    # DockQ's parser drops HETATM records (including modified residues such as 2Q2K's 5IU): compare like
    # with like by giving both tools the standard polymer residues only.
    return atoms[~ligand_mask(atoms) & ~atoms.hetero]


def _perturb(ref, rng, chain_shift=2.0, noise=0.6, rotate_chain=None):
    model = ref.copy()
    for chain in np.unique(model.chain_id):
        sel = model.chain_id == chain
        model.coord[sel] += rng.normal(0.0, chain_shift, 3).astype(np.float32)
    if rotate_chain is not None:
        sel = model.chain_id == rotate_chain
        center = model.coord[sel].mean(0)
        small = random_rotation(np.random.default_rng(5)) * 0.15 + np.eye(3) * 0.85
        u, _, vt = np.linalg.svd(small)
        model.coord[sel] = (model.coord[sel] - center) @ (u @ vt).T + center
    model.coord += rng.normal(0.0, noise, model.coord.shape).astype(np.float32)
    return model


def _reference_dockq(exe, model_path, native_path, tmp_path) -> dict:
    out = tmp_path / "dockq.json"
    subprocess.run([str(exe), str(model_path), str(native_path), "--json", str(out)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return json.loads(out.read_text())


def test_identity_gives_dockq_one(load):
    ref = _polymer(load("4i6p"))
    result = dockq(ref, ref)
    score = result.interface("A", "B")
    assert score.fnat == 1.0 and score.fnonnat == 0.0
    assert score.irmsd == pytest.approx(0.0, abs=1e-9) and score.lrmsd == pytest.approx(0.0, abs=1e-9)
    assert score.dockq == pytest.approx(1.0, abs=1e-12)


def test_rigid_shift_of_ligand_chain_gives_lrmsd_3(load):
    ref = _polymer(load("4i6p"))
    model = ref.copy()
    receptor = dockq(ref, ref).interface("A", "B").receptor
    ligand_chain = "A" if receptor == "B" else "B"
    model.coord[model.chain_id == ligand_chain] += np.array([3.0, 0.0, 0.0], dtype=np.float32)
    score = dockq(ref, model).interface("A", "B")
    assert score.lrmsd == pytest.approx(3.0, abs=1e-5)
    assert score.dockq == pytest.approx(dockq_formula(score.fnat, score.irmsd, 3.0), abs=1e-6)
    assert 0.0 < score.irmsd < 3.0


def test_global_rigid_motion_changes_nothing(load, rng):
    ref = _polymer(load("2q2k"))
    model = ref.copy()
    model.coord = apply(ref.coord, random_rotation(rng), np.array([10.0, -4.0, 2.5])).astype(np.float32)
    result = dockq(ref, model)
    assert len(result.interfaces) == 3
    for score in result.interfaces.values():
        assert score.dockq == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("entry", "swap"),
    [("4i6p", False), ("2q2k", False), ("1kd8", True)],
    ids=["protein-protein", "protein-DNA", "swapped-chains"],
)
def test_matches_dockq_package(load, rng, tmp_path, dockq_exe, entry, swap):
    ref = _polymer(load(entry))
    model = _perturb(ref, rng, rotate_chain=ref.chain_id[0])
    if swap:  # relabel two copies of the same peptide: the mapping must undo it
        ids = model.chain_id.copy()
        model.chain_id[ids == "A"] = "C"
        model.chain_id[ids == "C"] = "A"
    native_path, model_path = (
        write_mmcif(ref, tmp_path / "native.cif"),
        write_mmcif(model, tmp_path / "model.cif"),
    )
    expected = _reference_dockq(dockq_exe, model_path, native_path, tmp_path)
    ours = dockq(read_structure(native_path), read_structure(model_path))
    # DockQ keys interfaces by the two native chain ids concatenated (all ids here are one character);
    # "best_mapping" maps native → model chains.
    assert ours.chain_map == expected["best_mapping"]
    assert ours.global_dockq == pytest.approx(expected["GlobalDockQ"], abs=1e-3)
    assert len(ours.interfaces) == len(expected["best_result"])
    for key, item in expected["best_result"].items():
        score = ours.interface(key[0], key[1])
        assert score.fnat == pytest.approx(item["fnat"], abs=1e-3)
        assert score.fnonnat == pytest.approx(item["fnonnat"], abs=1e-3)
        assert score.irmsd == pytest.approx(item["iRMSD"], abs=1e-3)
        assert score.lrmsd == pytest.approx(item["LRMSD"], abs=1e-3)
        assert score.dockq == pytest.approx(item["DockQ"], abs=1e-3)
    if swap:
        assert ours.chain_map["A"] == "C" and ours.chain_map["C"] == "A"


def test_missing_chain_is_reported_unmapped(load):
    ref = _polymer(load("2q2k"))
    model = ref[ref.chain_id != "B"]
    result = dockq(ref, model)
    assert result.unmapped == ["B"]
    assert result.interface("A", "B").dockq == 0.0
    assert result.interface("F", "A").dockq == pytest.approx(1.0)


def test_missing_residues_lower_fnat_but_keep_pairing(load):
    """Drop a 4-residue interface segment of chain A: the alignment re-pairs the rest exactly."""
    ref = _polymer(load("4i6p"))
    full = dockq(ref, ref).interface("A", "B")
    chain_a = ref[ref.chain_id == "A"]
    near_b = np.min(np.linalg.norm(chain_a.coord[:, None] - ref.coord[ref.chain_id == "B"][None], axis=-1), 1)
    first = int(chain_a.res_id[np.argmax(near_b < 5.0)])
    model = ref[~((ref.chain_id == "A") & (ref.res_id >= first) & (ref.res_id < first + 4))]
    score = dockq(ref, model).interface("A", "B")
    assert 0.5 < score.fnat < 1.0
    assert score.fnonnat == 0.0
    assert score.n_native_contacts == full.n_native_contacts
    assert score.irmsd == pytest.approx(0.0, abs=1e-4) and score.lrmsd == pytest.approx(0.0, abs=1e-4)
