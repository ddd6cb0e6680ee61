"""Time per target of a full FoldBench-style evaluation: 5 samples per target, every sample scored.

Usage: ``python benchmarks/bench_eval.py [--samples 5] [--repeats 3]``. Targets are the real entries bundled for
the tests (``tests/analysis/data``); each target's predictions are 5 noisy copies (σ = 1 Å, AlphaFold 3 3.0.1
folder layout with ranking scores) so that reading, non-standard mapping, chain mapping, symmetry resolution and
top-1 selection all run. Per target: wall time and CPU time (user + sys of this process), median over repeats,
for the default metrics and with ``--lddt complex --lddt interface``. A second table times the validation lDDT
(``lddt_torch``) with and without symmetry resolution. Prints markdown tables (BENCHMARKS.md, "Metrics").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from analysis.eval import EvalOptions, Target, evaluate_all
from analysis.metrics.lddt import lddt_torch
from analysis.structure_io import read_structure, write_mmcif

DATA = Path(__file__).resolve().parents[1] / "tests" / "analysis" / "data"
TARGETS = [
    ("1ubq", "monomer", ("A",), None),
    ("4i6p", "protein_protein", ("A", "B"), None),
    ("2q2k", "protein_dna", ("A", "F"), None),
    ("1kd8", "protein_protein", ("A", "B"), None),
    ("1pzp", "protein_ligand", ("A",), "A:FTA:300"),
    ("7l39", "protein_ligand", ("A",), "MBN"),
]


def write_af3_samples(root: Path, entry: str, n_samples: int) -> None:
    atoms = read_structure(DATA / f"{entry}.cif.gz")
    rng = np.random.default_rng(0)
    for k in range(n_samples):
        sample = atoms.copy()
        sample.coord = sample.coord + rng.normal(0, 1.0, sample.coord.shape).astype(np.float32)
        folder = root / entry / f"seed-1_sample-{k}"
        write_mmcif(sample, folder / f"{entry}_seed-1_sample-{k}_model.cif")
        (folder / f"{entry}_seed-1_sample-{k}_summary_confidences.json").write_text(
            json.dumps({"ranking_score": float(rng.uniform())})
        )


def time_target(target: Target, predictions: Path, options: EvalOptions, repeats: int) -> tuple[float, float]:
    evaluate_all([target], predictions, options=options)  # warm-up: CCD, imports
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), os.times()
        raw, _ = evaluate_all([target], predictions, options=options)
        c1 = os.times()
        walls.append(time.perf_counter() - t0)
        cpus.append((c1.user - c0.user) + (c1.system - c0.system))
        assert raw.loc[0, "status"] == "ok", raw.loc[0, "error"]
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        predictions = Path(tmp)
        print("| target | task | atoms | default: wall s | CPU s | + complex & interface lDDT: wall s | CPU s |")
        print("|---|---|---|---|---|---|---|")
        totals = np.zeros(4)
        for entry, task, chains, ligand in TARGETS:
            write_af3_samples(predictions, entry, args.samples)
            target = Target(entry, task, entry, chains, DATA / f"{entry}.cif.gz", ligand)
            base = time_target(target, predictions, EvalOptions(layout="alphafold3"), args.repeats)
            scopes = ("complex", "interface") if task != "monomer" else ("complex",)
            full = time_target(target, predictions, EvalOptions(layout="alphafold3", lddt_scopes=scopes), args.repeats)
            totals += np.array([*base, *full])
            n_atoms = read_structure(DATA / f"{entry}.cif.gz").array_length()
            print(f"| {entry} | {task} | {n_atoms} | {base[0]:.2f} | {base[1]:.2f} | {full[0]:.2f} | {full[1]:.2f} |")
        mean = totals / len(TARGETS)
        print(f"| mean per target | | | {mean[0]:.2f} | {mean[1]:.2f} | {mean[2]:.2f} | {mean[3]:.2f} |")

    # Validation lDDT: 1KD8 (6 chains), batch 1, with and without the symmetric side-chain resolution.
    import biotite.structure as struc

    from models.features import RESTYPES

    atoms = read_structure(DATA / "1kd8.cif.gz")
    atoms = atoms[np.isin(atoms.res_name, RESTYPES[:20])]
    starts = struc.get_residue_starts(atoms)
    token = torch.as_tensor(struc.get_residue_positions(atoms, np.arange(atoms.array_length())))
    restype = torch.tensor([RESTYPES.index(str(atoms.res_name[s])) for s in starts])
    chars = torch.tensor([[ord(c) - 32 for c in str(n).ljust(4)[:4]] for n in atoms.atom_name])
    true = torch.tensor(atoms.coord)
    pred = true + torch.randn_like(true)
    mask = torch.ones(len(true), dtype=torch.bool)
    print(f"\n| lddt_torch, {len(true)} atoms, CPU, 1 thread | ms (median of {args.repeats + 2}) |\n|---|---|")
    for name, kwargs in (("plain", {}), ("symmetry-resolved", {"restype": restype, "atom_name_chars": chars})):
        times = []
        for _ in range(args.repeats + 2):
            t0 = time.perf_counter()
            lddt_torch(pred, true, mask, atom_to_token=token, **kwargs)
            times.append(time.perf_counter() - t0)
        print(f"| {name} | {1000 * statistics.median(times):.0f} |")


if __name__ == "__main__":
    main()
