"""`harness data msa`: an MMseqs2 search against a small real database built from real sequences (the
starter's UniProt hits of 2q2k plus the starter's own protein chains) writes an alignment store that
preparation reads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from harness.data.cache import prepare
from harness.data.clusters import mmseqs_version
from harness.data.msa import read_msa_with_species, sequence_key
from harness.data.msa_search import protein_sequences, search_msas
from harness.data.starter import starter_dir

pytestmark = pytest.mark.skipif(mmseqs_version() is None, reason="mmseqs2 not installed")


def _database(tmp_path, structures) -> tuple:
    """FASTA of the 2q2k UniProt hits (gaps and insertions removed) and of five starter structures' chains."""
    from harness.data.msa import _parse_sto, _read_text

    seqs, headers = _parse_sto(_read_text(starter_dir() / "msas" / "2q2k_A" / "uniprot_hits.sto.gz"))
    records = [(h, s.replace("-", "").upper()) for h, s in zip(headers[1:], seqs[1:], strict=True)]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("2q2k.cif.gz", "1ubq.cif.gz", "1a8q.cif.gz", "5pti.cif.gz", "3zee.cif.gz"):
        shutil.copy(structures / name, src)
    own, _ = protein_sequences(src)
    records += [(f"starter_{k}", s) for k, s in own.items() if "X" not in s]
    db = tmp_path / "db.fasta"
    db.write_text("".join(f">{h}\n{s}\n" for h, s in records))
    return src, db, own, len(records)


def test_search_writes_a_store_that_preparation_reads(tmp_path, structures):
    src, db, own, n_db = _database(tmp_path, structures)
    assert n_db > 20
    store = tmp_path / "store"
    files = search_msas(own, db, store)
    assert {f.name for f in files} == {f"{k}.a3m" for k in own}
    q2k = next(k for k, s in own.items() if s.startswith("MGSSHHHHHHSSGLVPGSHMDKKETKHLL"))
    msa, _, species = read_msa_with_species(store / f"{q2k}.a3m")
    assert msa.shape[0] > 10  # the ParR homologues were found
    assert "taxid:1280" in species  # UniProt taxonomy ids survive into the store, for pairing
    before = (store / f"{q2k}.a3m").stat().st_mtime_ns
    search_msas(own, db, store)  # a rerun searches nothing that exists
    assert (store / f"{q2k}.a3m").stat().st_mtime_ns == before
    report = prepare(src, tmp_path / "cache", msa_dir=store)
    depth = {e["entry_id"]: e["msa_depth"] for e in report.kept}
    # Preparation keeps the store's distinct rows (many UniProt hits are identical 51-residue fragments).
    assert depth["2q2k"] == len(np.unique(msa, axis=0)) > 1 and report.rejects == []
    assert sequence_key(own[q2k]) == q2k
