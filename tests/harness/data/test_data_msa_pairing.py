"""MSAs: species from real UniProt headers, pairing across entities by species, the alignment store keyed by
sequence hash; on the real 2q2k alignments of the starter set."""

from __future__ import annotations

import shutil

import numpy as np

from harness.data.cache import load_example, prepare
from harness.data.clusters import one_letter
from harness.data.msa import chain_msa, example_msa, read_msa_with_species, sequence_key
from harness.data.msa_pairing import paired_rows, species_of
from harness.data.parse import read_structure
from harness.data.starter import starter_dir

MSAS = starter_dir() / "msas" / "2q2k_A"


def test_species_from_uniprot_headers():
    assert species_of("tr|A0A2W3M096|A0A2W3M096_STAAU Plasmid segregation protein ParR OS=Staphylococcus "
                      "aureus OX=1280 GN=C7Q70_14145 PE=4 SV=1") == "taxid:1280"
    assert species_of("sp|P69905|HBA_HUMAN Hemoglobin subunit alpha") == "mnemonic:HUMAN"
    assert species_of("query") == species_of("UniRef100_P69905") == ""


def test_species_read_from_a3m_and_stockholm():
    msa, _, species = read_msa_with_species(MSAS / "bfd_uniclust_hits.a3m.gz")
    assert species[0] == "" and species[1] == "taxid:1280" and len(species) == msa.shape[0]
    msa, _, species = read_msa_with_species(MSAS / "uniprot_hits.sto.gz")
    assert len(species) == msa.shape[0] and "taxid:1280" in species


def test_heteromer_rows_paired_by_species():
    a = read_msa_with_species(MSAS / "uniprot_hits.sto.gz")
    b = read_msa_with_species(MSAS / "bfd_uniclust_hits.a3m.gz")
    entity_a = chain_msa([MSAS / "uniprot_hits.sto.gz"], a[0][0], 0, 1024)
    entity_b = chain_msa([MSAS / "bfd_uniclust_hits.a3m.gz"], b[0][0], 0, 1024)
    la, lb = entity_a[0].shape[1], entity_b[0].shape[1]
    chains = [{"entity_id": 1, "token_start": 0, "token_end": la},
              {"entity_id": 2, "token_start": la, "token_end": la + lb}]
    restype = np.concatenate([entity_a[0][0], entity_b[0][0]])
    pairs = paired_rows({1: entity_a[2], 2: entity_b[2]})
    assert pairs and all(entity_a[2][p[1]] == entity_b[2][p[2]] != "" for p in pairs)
    out = example_msa(restype, None, chains, {1: entity_a, 2: entity_b}, 4096)
    first = pairs[0]
    np.testing.assert_array_equal(out["msa"][1, :la], entity_a[0][first[1]])
    np.testing.assert_array_equal(out["msa"][1, la:], entity_b[0][first[2]])
    assert out["msa_mask"][1 : 1 + len(pairs)].all()  # paired rows cover both chains
    depth = 1 + len(pairs) + (entity_a[0].shape[0] - 1) + (entity_b[0].shape[0] - 1)
    assert out["msa"].shape[0] == depth
    # One entity (a homomer): nothing to pair, rows stay block-diagonal as before.
    single = example_msa(entity_b[0][0], None, [{"entity_id": 2, "token_start": 0, "token_end": lb}],
                         {2: entity_b}, 4096)
    assert single["msa"].shape[0] == entity_b[0].shape[0]


def test_alignment_store_keyed_by_sequence_hash(tmp_path, structures):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(structures / "2q2k.cif.gz", src)
    chain_a = next(c for c in read_structure(src / "2q2k.cif.gz").chains if c.auth_id == "A")
    sequence = one_letter("-".join(chain_a.sequence))
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(MSAS / "bfd_uniclust_hits.a3m.gz", store / f"{sequence_key(sequence)}.a3m.gz")
    per_chain = tmp_path / "per_chain"
    (per_chain / "2q2k_A").mkdir(parents=True)
    shutil.copy(MSAS / "bfd_uniclust_hits.a3m.gz", per_chain / "2q2k_A")
    a = prepare(src, tmp_path / "a", msa_dir=store)
    b = prepare(src, tmp_path / "b", msa_dir=per_chain)
    assert a.kept[0]["msa_depth"] == b.kept[0]["msa_depth"] > 1
    np.testing.assert_array_equal(load_example(tmp_path / "a", "2q2k")["msa"],
                                  load_example(tmp_path / "b", "2q2k")["msa"])
