"""Chain and interface clusters, AF3 sampling weights and the train/validation split by cluster.

AF3 SI §2.5.3: protein chains are clustered at 40% sequence identity (MMseqs2 ``easy-cluster``), peptides
under 10 residues and nucleic-acid chains at 100% identity, ligands by CCD code; an interface's cluster is
the unordered pair of its chains' clusters. Weights (SI §2.5.1, eq. 1)::

    w = beta / n_cluster * (alpha_prot * n_prot + alpha_nuc * n_nuc + alpha_ligand * n_ligand)

with beta = 0.5 for chains and 1 for interfaces, alpha_prot = alpha_nuc = 3, alpha_ligand = 1, n_cluster the
number of chains (interfaces) in the cluster and n_x the number of chains of each type (1 for a chain, 0-2
for an interface). Without ``mmseqs`` on PATH protein clusters fall back to exact sequence identity; the
method actually used is returned so the manifest records it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from harness.data.constants import DNA, LIGAND, PROTEIN, RNA, THREE_TO_ONE

BETA_CHAIN, BETA_INTERFACE = 0.5, 1.0
ALPHA = {PROTEIN: 3.0, RNA: 3.0, DNA: 3.0, LIGAND: 1.0}
PROTEIN_IDENTITY = 0.4
MIN_CLUSTERED_PEPTIDE = 10


def sequence_hash(sequence: str) -> str:
    return hashlib.sha256(sequence.encode()).hexdigest()[:16]


def one_letter(sequence: str) -> str:
    """``"MET-GLN-..."`` -> ``"MQ..."``; residues without a one-letter code become ``X``."""
    return "".join(THREE_TO_ONE.get(r, "X") for r in sequence.split("-"))


def mmseqs_version() -> str | None:
    exe = shutil.which("mmseqs")
    if exe is None:
        return None
    return subprocess.run([exe, "version"], capture_output=True, text=True, check=False).stdout.strip()


def _mmseqs_clusters(sequences: dict[str, str], threads: int) -> dict[str, str]:
    """hash -> representative hash from ``mmseqs easy-cluster`` at 40% identity, 80% coverage."""
    with tempfile.TemporaryDirectory(prefix="harness-mmseqs-") as tmp:
        fasta = Path(tmp) / "chains.fasta"
        fasta.write_text("".join(f">{h}\n{s}\n" for h, s in sequences.items()))
        cmd = ["mmseqs", "easy-cluster", str(fasta), f"{tmp}/res", f"{tmp}/work",
               "--min-seq-id", str(PROTEIN_IDENTITY), "-c", "0.8", "--threads", str(threads), "-v", "1"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mmseqs easy-cluster failed ({done.returncode}): {done.stderr[-500:]}")
        rep_of = {}
        for line in (Path(tmp) / "res_cluster.tsv").read_text().splitlines():
            rep, member = line.split("\t")
            rep_of[member] = rep
    return rep_of


def cluster_chains(
    sequences: list[str], mol_types: np.ndarray, *, threads: int = 1, use_mmseqs: bool = True
) -> tuple[list[str], dict]:
    """One cluster key per chain (``"protein:<rep hash>"``, ``"rna:<hash>"``, ``"ligand:ATP"``) and a
    description of the method used (for the manifest).

    Args:
        sequences: per chain, residue names joined by ``-`` (ligands: the CCD code(s)).
        mol_types: (n,) int molecule type per chain.
    """
    protein = {
        sequence_hash(s): one_letter(s)
        for s, t in zip(sequences, mol_types, strict=True)
        if t == PROTEIN and s.count("-") + 1 >= MIN_CLUSTERED_PEPTIDE
    }
    version = mmseqs_version() if use_mmseqs else None
    rep_of: dict[str, str] = {}
    if version and len(protein) > 1:
        rep_of = _mmseqs_clusters(protein, threads)
        method = {"protein": f"mmseqs2 easy-cluster --min-seq-id {PROTEIN_IDENTITY} -c 0.8", "mmseqs": version}
    else:
        why = "not requested" if not use_mmseqs else ("mmseqs not on PATH" if not version else "<2 sequences")
        method = {"protein": f"exact sequence (fallback: {why})", "mmseqs": version}
    method |= {"nucleic_acid": "exact sequence", "ligand": "CCD code", "peptide_lt_10": "exact sequence"}
    keys = []
    names = {PROTEIN: "protein", RNA: "rna", DNA: "dna", LIGAND: "ligand"}
    for s, t in zip(sequences, mol_types, strict=True):
        if t == LIGAND:
            keys.append(f"ligand:{s}")
        else:
            h = sequence_hash(s)
            keys.append(f"{names[int(t)]}:{rep_of.get(h, h)}")
    return keys, method


def chain_weights(cluster_ids: np.ndarray, mol_types: np.ndarray) -> np.ndarray:
    """(n,) float64 AF3 chain weights: 0.5 / cluster size * alpha(type)."""
    _, inverse, counts = np.unique(cluster_ids, return_inverse=True, return_counts=True)
    alpha = np.array([ALPHA[int(t)] for t in mol_types])
    return BETA_CHAIN * alpha / counts[inverse]


def interface_weights(cluster_pairs: np.ndarray, type_pairs: np.ndarray) -> np.ndarray:
    """(m,) float64 AF3 interface weights. ``cluster_pairs``: (m, 2) int chain-cluster ids (unordered);
    ``type_pairs``: (m, 2) int molecule types of the two chains."""
    if not len(cluster_pairs):
        return np.zeros(0)
    pairs = np.sort(cluster_pairs, axis=1)
    _, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    alpha = np.vectorize(lambda t: ALPHA[int(t)])(type_pairs).sum(axis=1)
    return BETA_INTERFACE * alpha / counts[inverse.reshape(-1)]


def _hash_unit(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_by_cluster(
    entry_of_chain: np.ndarray, cluster_ids: np.ndarray, cluster_keys: list[str], entry_ids: list[str],
    val_fraction: float,
) -> np.ndarray:
    """(n_entries,) bool, True = validation, such that no cluster has members on both sides.

    A cluster is a val candidate when a hash of its key falls under ``val_fraction``; an entry is val when all
    its clusters are candidates and none of them occurs in a training entry (iterated to a fixed point, since
    each entry moved to training makes its clusters training clusters). Entries without a clustered chain
    split by a hash of their id. The val share is therefore at most about ``val_fraction``.

    Args:
        entry_of_chain: (n,) int entry row of each clustered (polymer) chain.
        cluster_ids: (n,) int index into ``cluster_keys`` of each chain's cluster.
        cluster_keys: cluster key strings; hashing keys (not indices) keeps a cluster's side stable.
    """
    n_entries = len(entry_ids)
    candidate_cluster = np.array([_hash_unit(k) < val_fraction for k in cluster_keys], dtype=bool)
    has_chain = np.zeros(n_entries, dtype=bool)
    has_chain[entry_of_chain] = True
    val = np.ones(n_entries, dtype=bool)
    np.logical_and.at(val, entry_of_chain, candidate_cluster[cluster_ids])
    val &= has_chain
    while True:
        train_cluster = np.zeros_like(candidate_cluster)
        train_cluster[cluster_ids[~val[entry_of_chain]]] = True
        moved = np.zeros(n_entries, dtype=bool)
        np.logical_or.at(moved, entry_of_chain, train_cluster[cluster_ids])
        moved &= val
        if not moved.any():
            break
        val &= ~moved
    loose = ~has_chain
    val[loose] = [_hash_unit(entry_ids[i]) < val_fraction for i in np.flatnonzero(loose)]
    return val
