"""Reading structures (and the errors for bad files) and the prediction writer's round trip."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from analysis.structure_io import (
    StructureReadError,
    prediction_paths,
    ranking_score,
    read_structure,
    write_mmcif,
    write_prediction,
)


def test_reader_keeps_heavy_atoms_and_bonds(data_dir):
    atoms = read_structure(data_dir / "1ubq.cif.gz")
    assert not np.isin(atoms.element, ["H", "D"]).any()
    assert "HOH" not in set(atoms.res_name)
    assert atoms.array_length() == 602  # 76 residues of 1UBQ, heavy atoms, no water
    assert atoms.bonds is not None and atoms.bonds.get_bond_count() > 600


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"data_x\n_cell.length_a 1.0\n", "cannot parse|no heavy atoms"),
     (b"\x00\x01garbage", "cannot parse")],
    ids=["empty", "no-atoms", "garbage"],
)  # fmt: skip
def test_bad_files_raise_typed_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.cif"
    path.write_bytes(content)
    with pytest.raises(StructureReadError, match=message) as info:
        read_structure(path)
    assert str(path) in str(info.value)


def test_missing_and_unknown_format(tmp_path):
    with pytest.raises(StructureReadError, match="file not found"):
        read_structure(tmp_path / "absent.cif")
    other = tmp_path / "x.xyz"
    other.write_text("1\n")
    with pytest.raises(StructureReadError, match="unknown structure format"):
        read_structure(other)


@pytest.mark.parametrize("suffix", [".cif", ".cif.gz"])
def test_mmcif_round_trip_with_plddt(load, tmp_path, suffix):
    atoms = load("7l39")
    plddt = np.linspace(10.0, 95.0, atoms.array_length()).astype(np.float32)
    path = write_mmcif(atoms, tmp_path / f"model{suffix}", plddt=plddt)
    if suffix.endswith(".gz"):
        with gzip.open(path) as handle:
            assert handle.read(5) == b"data_"
    back = read_structure(path)
    np.testing.assert_allclose(back.coord, atoms.coord, atol=1e-3)
    np.testing.assert_allclose(back.b_factor, plddt, atol=0.01)
    assert list(back.atom_name) == list(atoms.atom_name)
    assert back.bonds.get_bond_count() == atoms.bonds.get_bond_count()
    with pytest.raises(ValueError, match="plddt has shape"):
        write_mmcif(atoms, tmp_path / "x.cif", plddt=plddt[:-1])


def test_write_prediction_layout_and_json(load, tmp_path):
    atoms = load("1ubq")
    score = ranking_score(ptm=0.8, iptm=0.6, fraction_disordered=0.1)
    assert score == pytest.approx(0.8 * 0.6 + 0.2 * 0.8 + 0.05)
    assert ranking_score(0.7, None, has_clash=True) == pytest.approx(0.7 - 100.0)
    paths = write_prediction(tmp_path, "1ubq", 3, atoms, np.full(atoms.array_length(), 70.0), ranking=score,
                             seed=11, confidences={"ptm": 0.8, "iptm": 0.6})  # fmt: skip
    assert paths == prediction_paths(tmp_path, "1ubq", 3)
    assert paths.structure == tmp_path / "1ubq" / "1ubq_sample_3.cif"
    payload = json.loads(paths.confidences.read_text())
    assert payload["ranking_score"] == pytest.approx(score)
    assert payload["seed"] == 11 and payload["ptm"] == 0.8 and payload["plddt_mean"] == pytest.approx(70.0)
    assert read_structure(paths.structure).array_length() == atoms.array_length()
    with pytest.raises(ValueError, match="not finite"):
        write_prediction(tmp_path, "1ubq", 4, atoms, np.zeros(atoms.array_length()), ranking=float("nan"))


def test_label_or_author_chain_ids(data_dir, load, tmp_path):
    """2Q2K: author chains A (protein), F (DNA), ligand EPE in A; label_asym_id B, A, and D for the ligand."""
    auth = read_structure(data_dir / "2q2k.cif.gz")
    label = read_structure(data_dir / "2q2k.cif.gz", chain_ids="label")
    assert np.array_equal(auth.coord, label.coord)
    pairs = set(zip(label.chain_id.tolist(), auth.chain_id.tolist(), strict=True))
    assert {("A", "F"), ("B", "A"), ("D", "A")} <= pairs
    assert set(label.chain_id[label.res_name == "EPE"]) == {"D"}
    pdb = tmp_path / "x.pdb"
    pdb.write_text("ATOM      1  CA  ALA A   1       0.000   0.000   0.000  1.00  0.00           C\nEND\n")
    with pytest.raises(StructureReadError, match="no label_asym_id"):
        read_structure(pdb, chain_ids="label")
    with pytest.raises(ValueError, match="expected one of auth, label"):
        read_structure(pdb, chain_ids="author")
