"""Parsing and AF3 tokenisation on real starter entries: token counts, CCD atoms and bonds, masks."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from harness.data.ccd import component
from harness.data.constants import DNA, LIGAND, PROTEIN, RESTYPE_INDEX
from harness.data.parse import read_structure
from harness.data.tokenize import tokenize


def test_ubiquitin_one_token_per_residue(structures):
    s = read_structure(structures / "1ubq.cif.gz")
    tok = tokenize(s).arrays
    assert len(tok["restype"]) == 76  # waters dropped, no ligands
    assert (tok["mol_type"] == PROTEIN).all()
    names = tok["ref_atom_name_chars"][tok["center_atom"]]
    assert (names[:, :2] == [ord("C") - 32, ord("A") - 32]).all()  # CA
    assert tok["restype"][0] == RESTYPE_INDEX["MET"]
    # 1ubq has 602 protein heavy atoms; AF3 drops the C-terminal OXT (leaving atom), all others resolved.
    expected = sum(len(component(r.name).atom_names) - 1 for r in s.chains[0].residues)  # minus OXT
    assert len(tok["atom_to_token"]) == expected == 601
    assert tok["gt_atom_mask"].all()


def test_ligand_tokens_are_ccd_atoms_with_ccd_bonds(structures):
    s = read_structure(structures / "1pzp.cif.gz")
    tok = tokenize(s).arrays
    fta = component("FTA")
    n_res, n_copies = 263, 2  # 1pzp: one chain, two bound FTA molecules
    assert len(tok["restype"]) == n_res + n_copies * len(fta.atom_names)
    first = s.chains[1]
    assert first.residues[0].name == "FTA"
    lig = np.flatnonzero(tok["asym_id"] == 2)
    assert len(lig) == len(fta.atom_names) and (tok["mol_type"][lig] == LIGAND).all()
    assert (tok["atom_count"][lig] == 1).all()
    assert (tok["center_atom"][lig] == tok["atom_start"][lig]).all()
    elements = tok["ref_element"][tok["atom_start"][lig]]
    np.testing.assert_array_equal(elements, fta.elements)
    bonds = {tuple(b) for b in tok["token_bonds"]}
    expected = {tuple(sorted((lig[i], lig[j]))) for i, j in fta.bonds}
    assert expected <= bonds
    # The ligand's own bonds plus none between standard residues.
    assert all(tok["mol_type"][i] == LIGAND or tok["mol_type"][j] == LIGAND for i, j in bonds)


def test_missing_residues_follow_entity_sequence(structures):
    s = read_structure(structures / "2q2k.cif.gz")
    chains = {c.auth_id: c for c in s.chains}
    assert len(chains["A"].residues) == 70  # entity sequence incl. the unresolved His-tag
    assert sum(bool(r.atoms) for r in chains["A"].residues) < 70
    tok = tokenize(s).arrays
    prot = tok["asym_id"] == 2
    assert prot.sum() == 70
    assert not tok["gt_atom_mask"][tok["center_atom"][prot]][:5].any()
    assert (tok["mol_type"] == DNA).sum() > 0
    # 5IU (5-iodo-dU) in the DNA is a modified residue: one token per atom, linked by token bonds.
    modified = (tok["mol_type"] == LIGAND) & (tok["asym_id"] == 1)
    assert modified.sum() == 2 * len(component("5IU").atom_names) - 2  # two copies, no OP3 leaving atom
    assert tok["restype"][modified].max() == RESTYPE_INDEX["DN"]


def test_selenomethionine_becomes_methionine(structures):
    s = read_structure(structures / "4zey.cif.gz")
    names = [r.name for c in s.chains for r in c.residues]
    assert "MSE" not in names and "MET" in names
    met = next(r for c in s.chains for r in c.residues if r.name == "MET" and r.atoms)
    assert "SD" in met.atoms and "SE" not in met.atoms


def test_pdb_without_seqres_and_gzip(structures):
    s = read_structure(structures / "1ahsa.pdb.gz")
    assert [c.auth_id for c in s.chains] == ["A"]
    assert len(s.chains[0].residues) == 126


def test_predicted_structure_plddt_filter(structures, tmp_path):
    """A real structure written AFDB-style: pLDDT in the B-factor column, 30 for residues 1-20, 90 after."""
    lines = gzip.decompress((structures / "1ahsa.pdb.gz").read_bytes()).decode().splitlines()
    out = []
    for line in lines:
        if line.startswith("ATOM"):
            resnum = int(line[22:26])
            plddt = 30.0 if resnum < 146 else 90.0
            line = f"{line[:60]}{plddt:6.2f}{line[66:]}"
        out.append(line)
    path = tmp_path / "AF-P00000-F1-model_v4.pdb"
    path.write_text("\n".join(out) + "\n")
    s = read_structure(path, predicted=True, plddt_min=70)
    res = s.chains[0].residues
    assert len(res) == 126
    assert sum(bool(r.atoms) for r in res) == 126 - 20
    tok = tokenize(s).arrays
    np.testing.assert_allclose(tok["token_plddt"][:20], 30.0)
    assert np.isnan(tokenize(read_structure(path)).arrays["token_plddt"]).all()
    with pytest.raises(Exception, match="pLDDT"):
        read_structure(path, predicted=True, plddt_min=95)
