"""Biological assemblies (AF3 trains on the first): expanded from the file's own operators."""

import gemmi
import numpy as np

from harness.data.example import build_example
from harness.data.filters import FilterConfig
from harness.data.parse import read_structure
from harness.data.starter import starter_dir

STRUCTURES = starter_dir() / "structures"


def test_assembly_applies_the_files_operators():
    """2q2k's assembly 1 is two copies of the protein-DNA asymmetric unit; the second copy is the first moved by
    the file's non-identity operator, exactly."""
    asu = read_structure(STRUCTURES / "2q2k.cif.gz")
    full = read_structure(STRUCTURES / "2q2k.cif.gz", assembly="1")
    assert full.meta["assembly"] == "assembly 1" and asu.meta["assembly"] == "asymmetric unit"
    assert len(full.chains) == 2 * len(asu.chains)
    assert [c.auth_id for c in full.chains[: len(asu.chains)]] == [c.auth_id for c in asu.chains]
    assert len(full.bonds) == 2 * len(asu.bonds)

    st = gemmi.read_structure(str(STRUCTURES / "2q2k.cif.gz"))
    ops = [op for gen in st.assemblies[0].generators for op in gen.operators]
    moved = next(op for op in ops if not op.transform.is_identity())
    rot, shift = np.array(moved.transform.mat.tolist()), np.array(moved.transform.vec.tolist())
    original = next(c for c in asu.chains if c.auth_id == "A")
    copies = [c for c in full.chains[len(asu.chains):] if c.sequence == original.sequence]
    res = next(r for r in original.residues if "CA" in r.atoms)
    expected = rot @ res.atoms["CA"] + shift
    got = [c.residues[res.seq_pos - 1].atoms["CA"] for c in copies]
    assert min(np.linalg.norm(g - expected) for g in got) < 1e-3


def test_assembly_smaller_than_the_asymmetric_unit_and_missing_assembly():
    # 1ake: two copies of adenylate kinase in the crystal; assembly 1 is one of them.
    assert len(read_structure(STRUCTURES / "1ake.cif.gz").chains) > len(
        read_structure(STRUCTURES / "1ake.cif.gz", assembly="1").chains)
    lone = read_structure(STRUCTURES / "1psm.cif.gz", assembly="1")
    assert lone.meta["assembly"] == "asymmetric unit (the file has no assembly '1')"


def test_preparation_setting_reaches_the_parser():
    _, asu, _ = build_example(STRUCTURES / "2q2k.cif.gz", None, filters=FilterConfig())
    _, full, _ = build_example(STRUCTURES / "2q2k.cif.gz", None, filters=FilterConfig(bioassembly="1"))
    assert full.n_tokens == 2 * asu.n_tokens
    assert FilterConfig.af3().bioassembly == "1"
