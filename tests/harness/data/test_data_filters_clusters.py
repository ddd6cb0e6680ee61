"""AF3 filters, clusters, weights and the split by cluster, on real starter structures and sequences."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from harness.data.cache import load_index, prepare
from harness.data.clusters import (
    chain_weights,
    cluster_chains,
    interface_weights,
    mmseqs_version,
    split_by_cluster,
)
from harness.data.constants import DNA, LIGAND, PROTEIN
from harness.data.filters import FilterConfig, FilteredError, apply_filters, clashing_chains, nearest_chains
from harness.data.parse import read_structure


def test_metadata_read_from_mmcif(structures):
    s = read_structure(structures / "1a8q.cif.gz")
    assert s.meta == {"release_date": "1998-06-17", "resolution": 1.75, "method": "X-RAY DIFFRACTION",
                      "assembly": "asymmetric unit"}


def test_entry_filters_raise_with_their_reason(structures):
    s = read_structure(structures / "1a8q.cif.gz")
    with pytest.raises(FilteredError, match="released 1998-06-17") as err:
        apply_filters(s, FilterConfig(release_date_max="1998-01-01"))
    assert err.value.kind == "release_date"
    with pytest.raises(FilteredError, match="1.75") as err:
        apply_filters(s, FilterConfig(resolution_max=1.5))
    assert err.value.kind == "resolution"
    kept = apply_filters(s, FilterConfig(release_date_max="1998-06-17", resolution_max=1.75))
    assert len(kept.chains) == len(s.chains)


def test_max_chains_keeps_the_nearest_to_a_random_chain_or_drops(structures):
    s = read_structure(structures / "1kd8.cif.gz")
    assert len(s.chains) == 6
    with pytest.raises(FilteredError) as err:
        apply_filters(s, FilterConfig(max_chains=3, max_chains_mode="drop"))
    assert err.value.kind == "max_chains"
    reduced = apply_filters(s, FilterConfig(max_chains=3))
    assert len(reduced.chains) == 3
    assert reduced.chains == apply_filters(s, FilterConfig(max_chains=3)).chains  # deterministic per entry
    kept = {id(c) for c in reduced.chains}
    assert all(id(c) in kept for c in reduced.chains)
    assert all(0 <= a[0] < 3 and 0 <= b[0] < 3 for a, b in reduced.bonds)


def test_nearest_chains_by_minimum_distance():
    atoms = [np.zeros((3, 3)), np.full((2, 3), 10.0), np.full((2, 3), 3.0), np.full((1, 3), 50.0)]
    assert nearest_chains(atoms, 2, anchor=0) == [0, 2]
    assert nearest_chains(atoms, 3, anchor=3) == [0, 1, 3] or nearest_chains(atoms, 3, anchor=3) == [1, 2, 3]


def test_clashing_chain_removed_by_af3_rule(structures):
    s = read_structure(structures / "1ubq.cif.gz")
    protein = np.array([p for r in s.chains[0].residues for p in r.atoms.values()])
    copy = protein[:200] + 0.5  # 200 atoms on top of the first 200 of the protein
    far = protein + 100.0
    # The copy clashes with 100% of its atoms, the protein with 200/602: the copy goes.
    assert clashing_chains([protein, copy, far], 1.7, 0.3) == {1}
    assert clashing_chains([protein, far], 1.7, 0.3) == set()
    # Equal fractions and sizes: the later chain goes.
    assert clashing_chains([protein, protein + 0.1], 1.7, 0.3) == {1}


def test_min_length_and_unknown_fraction_remove_chains(structures):
    s = read_structure(structures / "1ubq.cif.gz")
    n = len(s.chains[0].residues)
    with pytest.raises(FilteredError) as err:
        apply_filters(s, FilterConfig(min_polymer_length=n + 1))
    assert err.value.kind == "no_chains"
    for r in s.chains[0].residues[: n // 2 + 1]:
        r.name = "UNK"
    with pytest.raises(FilteredError):
        apply_filters(s, FilterConfig(max_unknown_fraction=0.5))
    assert apply_filters(s, FilterConfig(max_unknown_fraction=0.6)).chains


def test_prepare_counts_each_drop_by_reason(tmp_path, structures):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("1a8q.cif.gz", "1bd2.cif.gz", "1ubq.cif.gz", "1kd8.cif.gz"):
        shutil.copy(structures / name, src)
    report = prepare(src, tmp_path / "cache", filters=FilterConfig(resolution_max=2.0, max_chains=4,
                                                                    max_chains_mode="drop"))
    assert report.counts["rejects"] == {"max_chains": 1, "resolution": 1}
    assert sorted(e["entry_id"] for e in report.kept) == ["1a8q", "1ubq"]
    index = load_index(tmp_path / "cache")
    assert index["settings"]["filters"]["resolution_max"] == 2.0


def _sequence(structures, name, chain=0):
    return "-".join(read_structure(structures / name).chains[chain].sequence)


@pytest.mark.skipif(mmseqs_version() is None, reason="mmseqs2 not installed (bash scripts/install_data_tools.sh)")
def test_mmseqs_clusters_homologs_at_40_percent(structures):
    ubq = _sequence(structures, "1ubq.cif.gz")
    residues = ubq.split("-")
    mutant = residues.copy()
    for i in range(0, len(residues), 4):  # 25% of positions substituted: ~75% identity
        mutant[i] = "TRP" if residues[i] != "TRP" else "ALA"
    other = _sequence(structures, "1a8q.cif.gz")
    seqs = [ubq, "-".join(mutant), other, ubq, "DA-DC-DG", "ATP"]
    types = np.array([PROTEIN, PROTEIN, PROTEIN, PROTEIN, DNA, LIGAND])
    keys, method = cluster_chains(seqs, types)
    assert keys[0] == keys[1] == keys[3] != keys[2]
    assert keys[5] == "ligand:ATP" and keys[4].startswith("dna:")
    assert method["protein"].startswith("mmseqs2") and method["mmseqs"]
    exact, fallback = cluster_chains(seqs, types, use_mmseqs=False)
    assert exact[0] == exact[3] != exact[1] and "fallback" in fallback["protein"]


def test_af3_weights():
    clusters = np.array([0, 0, 1, 2])
    types = np.array([PROTEIN, PROTEIN, DNA, LIGAND])
    np.testing.assert_allclose(chain_weights(clusters, types), [0.75, 0.75, 1.5, 0.5])
    # Two protein-protein interfaces of one cluster pair (either order), one protein-ligand interface.
    pairs = np.array([[0, 1], [1, 0], [0, 2]])
    np.testing.assert_allclose(interface_weights(pairs, np.array([[PROTEIN, DNA]] * 2 + [[PROTEIN, LIGAND]])),
                               [3.0, 3.0, 4.0])


def test_split_by_cluster_never_shares_a_cluster():
    rng = np.random.default_rng(0)
    n_entries, n_chains = 400, 1000
    entry = np.sort(rng.integers(0, n_entries, n_chains))
    entry[:n_entries] = np.arange(n_entries)
    entry.sort()
    cluster = rng.integers(0, 300, n_chains)
    keys = [f"protein:{i}" for i in range(300)]
    val = split_by_cluster(entry, cluster, keys, [f"e{i}" for i in range(n_entries)], 0.3)
    assert 0 < val.sum() < n_entries
    assert not set(cluster[val[entry]]) & set(cluster[~val[entry]])


def test_prepared_split_is_by_cluster(tmp_path, structures):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("1ubq.cif.gz", "3zee.cif.gz", "4i6p.cif.gz", "1a8q.cif.gz", "5pti.cif.gz", "7l39.cif.gz"):
        shutil.copy(structures / name, src)
    shutil.copy(structures / "1ubq.cif.gz", src / "9ubq.cif.gz")  # the same chain under another id
    report = prepare(src, tmp_path / "cache", val_fraction=0.5)
    assert report.counts["split_leaking_clusters"] == 0
    split = {e["entry_id"]: e["split"] for e in report.kept}
    assert split["1ubq"] == split["9ubq"]
