"""Does a study reproduce? Retrain chosen runs of a study from scratch in a fresh folder — branches too, without
their parent — and compare every final validation metric with the recorded one.

A study's verdicts are functions of its runs' final values (and of seeded bootstraps), so runs that reproduce
to the bit reproduce every verdict. Each run is retrained by ``harness.train.run.train_run`` from its recorded
``config.yaml`` (``init_from`` dropped: a branch is the run its config trains from scratch).

    PYTHONPATH=$PWD python benchmarks/study_rerun.py runs/study/width_vs_depth/<run key> [...] --out /tmp/rerun
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from harness.config import load_record
from harness.tracking import names

METRICS = (names.VAL_LOSS, names.VAL_LDDT, names.VAL_CONTACT_PRECISION, names.VAL_DISTOGRAM_CE, names.LOSS)


def final_values(run_dir: Path, step: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with open(run_dir / names.RUN_METRICS_FILE) as f:
        for row in csv.DictReader(f):
            if int(row["step"]) == step and row["key"] in METRICS:
                out[row["key"]] = float(row["value"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="recorded run folders of a study")
    parser.add_argument("--out", type=Path, required=True, help="fresh folder for the retrained runs")
    args = parser.parse_args()
    from harness.train.run import train_run

    table = Table(title="retrained from scratch vs recorded (final step)")
    for col in ("run", "started from", "metric", "recorded", "retrained", "equal"):
        table.add_column(col)
    for run in args.runs:
        raw = yaml.safe_load((run / names.RUN_CONFIG_FILE).read_text())
        raw.pop("derived", None)
        origin = raw.pop("init_from", None)
        raw["tracking"] = {**raw.get("tracking", {}), "enabled": False}
        config = load_record(raw, str(run))
        t0 = time.perf_counter()
        train_run(config, args.out / run.name)
        wall = time.perf_counter() - t0
        step = config.train.max_steps
        recorded, again = final_values(run, step), final_values(args.out / run.name, step)
        start = f"branch at {origin['step']}" if origin else "scratch"
        for key in METRICS:
            a, b = recorded.get(key, math.nan), again.get(key, math.nan)
            table.add_row(run.name, f"{start} ({wall:.0f} s)", key, f"{a:.10g}", f"{b:.10g}",
                          "yes" if a == b else f"no ({b - a:+.2g})")
    Console(width=180).print(table)


if __name__ == "__main__":
    main()
