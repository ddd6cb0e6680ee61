"""A 20-step miniature training run whose recorded metrics must not change with a refactoring, to the bit.

Trains a CPU miniature through the real ``train_run`` (two stages with a crop and diffusion-batch change,
gradient accumulation over 2 micro-batches, up to 2 recycling cycles drawn per step, the confidence head and its
own Adam group, validation at steps 0, 10 and 20) and writes every deterministic metric of ``metrics.csv`` (the
measured ones, time, throughput and memory, are left out) to ``--out`` as JSON. ``--compare`` reads an earlier
such file and prints, per metric, how many values differ and the largest difference; exit status 1 if any does.

    python benchmarks/bit_identity_run.py --out before.json
    python benchmarks/bit_identity_run.py --out after.json --compare before.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.config import RunConfig
from harness.config_files import parse_config
from harness.tracking import names
from harness.train.run import train_run

MEASURED = {names.EXAMPLES_PER_S, names.ITER_PER_S, names.PEAK_MEMORY_MB, names.DEVICE_S_PER_STEP,
            names.DEVICE_S_CUMULATIVE}


def config(root: Path) -> RunConfig:
    return parse_config(RunConfig, {
        "name": "bit-identity", "seed": 3, "runs_dir": str(root / "runs"),
        "model": {"preset": "base", "miniature": True},
        "data": {"crop_size": 24, "max_msa_rows": 8, "batch_size": 1, "num_workers": 0, "val_max_tokens": 32},
        "train": {"max_steps": 20, "warmup_steps": 5, "lr": 1e-3, "diffusion_batch": 2, "max_cycles": 2,
                  "global_batch": 2, "devices": 1, "confidence_loss": True,
                  "stages": [{"start_step": 0}, {"start_step": 12, "crop_size": 32, "diffusion_batch": 4}],
                  "val_every": 10, "val_sampling_steps": 10, "val_batches": 2, "checkpoint_every": 5,
                  "log_every": 1, "threads": 1},
        "tracking": {"enabled": False},
    }, "<bit-identity>")


def deterministic_metrics(metrics_csv: Path) -> dict[str, dict[str, str]]:
    """metric -> {step: value as written}, without the measured metrics."""
    out: dict[str, dict[str, str]] = {}
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            if row["key"] not in MEASURED:
                out.setdefault(row["key"], {})[row["step"]] = row["value"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        train_run(config(Path(tmp)), folder)
        metrics = deterministic_metrics(folder / names.RUN_METRICS_FILE)
    args.out.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    n_values = sum(len(v) for v in metrics.values())
    print(f"{len(metrics)} deterministic metrics, {n_values} values -> {args.out}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    table = Table(title=f"{args.out} vs {args.compare}")
    for column in ("metric", "values", "differ", "max |diff|"):
        table.add_column(column)
    differ_total = 0
    for key in sorted(before.keys() | metrics.keys()):
        a, b = before.get(key, {}), metrics.get(key, {})
        steps = a.keys() | b.keys()
        differ = [s for s in steps if a.get(s) != b.get(s)]
        diffs = [abs(float(a[s]) - float(b[s])) for s in differ if s in a and s in b]
        differ_total += len(differ)
        table.add_row(key, str(len(steps)), str(len(differ)), f"{max(diffs):.3g}" if diffs else "0")
    Console(width=160).print(table)
    print(f"{'IDENTICAL' if differ_total == 0 else 'DIFFERENT'}: {differ_total} of {n_values} values differ")
    return 1 if differ_total else 0


if __name__ == "__main__":
    sys.exit(main())
