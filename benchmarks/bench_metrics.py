"""Metric time per complex: all-atom lDDT on ~5k atoms (numpy and torch), DockQ, ligand RMSD/lDDT-PLI.

Usage: ``python benchmarks/bench_metrics.py [--repeats 5]``. Inputs are the real entries bundled for the
tests (``tests/analysis/data``); predictions are noisy copies (σ = 1 Å), so every contact, alignment and
superposition is exercised. The ~5k-atom case places four entries side by side as separate chains. Prints a
markdown table; the results live in BENCHMARKS.md ("Metrics").
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import biotite.structure as struc
import numpy as np
import torch

from analysis.metrics.correspondence import ligand_mask
from analysis.metrics.dockq import dockq
from analysis.metrics.lddt import lddt, lddt_torch
from analysis.metrics.ligand import ligand_pose
from analysis.structure_io import read_structure

DATA = Path(__file__).resolve().parents[1] / "tests" / "analysis" / "data"


def _load(entry: str, polymer_only: bool = True) -> struc.AtomArray:
    atoms = read_structure(DATA / f"{entry}.cif.gz")
    return atoms[~ligand_mask(atoms) & ~atoms.hetero] if polymer_only else atoms


def _noisy(atoms: struc.AtomArray, sigma: float = 1.0, seed: int = 0) -> struc.AtomArray:
    out = atoms.copy()
    out.coord = out.coord + np.random.default_rng(seed).normal(0, sigma, out.coord.shape).astype(np.float32)
    return out


def five_k_atoms() -> struc.AtomArray:
    """1PZP + 7L39 + 4I6P + 2Q2K proteins/DNA, 60 Å apart, chains renamed uniquely (~5k heavy atoms)."""
    parts = []
    for k, entry in enumerate(["1pzp", "7l39", "4i6p", "2q2k"]):
        atoms = _load(entry)
        atoms.coord = atoms.coord - atoms.coord.mean(0) + np.array([60.0 * k, 0.0, 0.0], dtype=np.float32)
        atoms.chain_id = np.char.add(atoms.chain_id.astype(str), str(k))
        parts.append(atoms)
    return struc.concatenate(parts)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (imports, CCD look-ups, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []

    big = five_k_atoms()
    big_model = _noisy(big)
    n = big.array_length()
    rows.append(
        (f"lDDT all-atom, symmetry-resolved ({n} atoms, 7 chains)", timed(lambda: lddt(big, big_model), args.repeats))
    )
    rows.append(
        (
            f"lDDT all-atom, no symmetry ({n} atoms)",
            timed(lambda: lddt(big, big_model, resolve_symmetry=False), args.repeats),
        )
    )  # noqa: E501
    rows.append(
        (f"lDDT Cα/C3′ ({n} atoms)", timed(lambda: lddt(big, big_model, representative_only=True), args.repeats))
    )
    residue = torch.tensor(struc.get_residue_positions(big, np.arange(n)))
    true, pred = torch.tensor(big.coord), torch.tensor(big_model.coord)
    mask = torch.ones(n, dtype=torch.bool)
    rows.append(
        (
            f"lddt_torch ({n} atoms, batch 1, CPU)",
            timed(lambda: lddt_torch(pred, true, mask, atom_to_token=residue), args.repeats),
        )
    )  # noqa: E501
    batch = (pred.expand(4, -1, -1), true.expand(4, -1, -1), mask.expand(4, -1))
    rows.append(
        (
            f"lddt_torch ({n} atoms, batch 4, CPU)",
            timed(lambda: lddt_torch(*batch, atom_to_token=residue.expand(4, -1)), args.repeats),
        )
    )  # noqa: E501

    for entry, label in [("4i6p", "protein–protein, 2 chains"), ("2q2k", "protein–DNA, 3 chains, 3 interfaces"),
                         ("1kd8", "hexamer, 6 chains, 36 mappings searched")]:  # fmt: skip
        ref = _load(entry)
        model = _noisy(ref, seed=1)
        rows.append(
            (
                f"DockQ {entry} ({label}, {ref.array_length()} atoms)",
                timed(lambda r=ref, m=model: dockq(r, m), args.repeats),
            )
        )  # noqa: E501

    for entry, spec in [("1pzp", "A:FTA:300"), ("7l39", "MBN")]:
        ref = _load(entry, polymer_only=False)
        model = _noisy(ref, seed=2)
        score = ligand_pose(ref, model, spec)
        rows.append(
            (
                f"ligand RMSD + lDDT-PLI {entry} {spec} ({score.n_automorphisms} automorphisms)",
                timed(lambda r=ref, m=model, s=spec: ligand_pose(r, m, s), args.repeats),
            )
        )  # noqa: E501

    print(f"torch threads: {torch.get_num_threads()}, repeats: {args.repeats} (median)\n")
    print("| metric | ms per complex |\n|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
