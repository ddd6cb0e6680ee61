"""A learning-rate scan run trains the same with its end-only validation as with the study's full schedule.

Takes one scan run of a study sweep (``--sweep``, ``--profile``, ``--config``, ``--factor``: its configuration and
lr multiple), trains it twice through the real ``train_run``, each in a fresh process: once as the scan runs it
(``harness.sweep.study.SCAN_VALIDATION``: validated at the last step only), once with the validation schedule
every other run of the profile has (step 0, the log-spaced points), and prints the final val/loss of both and
every train/ metric step by step. Exit status 1 unless all are equal to the bit: validation must not consume the
training RNG.

    PYTHONPATH=$PWD python benchmarks/scan_validation_identity.py --runs-dir /tmp/scan_identity --config large
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.sweep.expand import expand_runs, load_sweep
from harness.sweep.study import SCAN_VALIDATION
from harness.tracking import names

DETERMINISTIC = (names.LOSS, names.VAL_LOSS)


def scan_config(sweep: str, profile: str, config: str, factor: float, root: Path, schedule: str) -> dict:
    """The scan run's RunConfig (JSON), with its own (``scan``) or the profile's (``full``) validation."""
    spec_file = load_sweep(sweep)
    _, plan = expand_runs(spec_file, profile, source=sweep, lr_source="scan")
    scan = [s for s in plan.scan if s.tags[names.TAG_STUDY_CONFIG] == config]  # factor by factor, seeds inside
    spec = scan[plan.design.scan.factors.index(factor) * len(plan.design.scan.seeds)]
    raw = spec.config.model_dump(mode="json")
    raw["runs_dir"] = str(root / schedule)
    raw["tracking"]["enabled"] = False
    if schedule == "full":
        profile_runs = expand_runs(spec_file, profile, source=sweep, lr_source="config")[0]
        train = next(s for s in profile_runs if s.tags.get(names.TAG_STUDY_ROLE) != "scan").config.train
        raw["train"] |= {key: getattr(train, key) for key in SCAN_VALIDATION}
    return raw


def train(raw: dict) -> None:
    from harness.config import RunConfig
    from harness.train.run import train_run

    train_run(RunConfig.model_validate(raw))


def curves(run_dir: Path) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    with open(run_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["key"], {})[int(row["step"])] = row["value"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="sweeps/width_vs_depth.yaml")
    parser.add_argument("--profile", default="study")
    parser.add_argument("--config", default="large", help="the configuration whose scan run is trained")
    parser.add_argument("--factor", type=float, default=1.0, help="its lr multiple in the scan")
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--train", help=argparse.SUPPRESS)  # internal: train this JSON config here
    args = parser.parse_args()
    if args.train:
        train(json.loads(Path(args.train).read_text()))
        return
    dirs = {}
    for schedule in ("scan", "full"):
        raw = scan_config(args.sweep, args.profile, args.config, args.factor, args.runs_dir, schedule)
        path = args.runs_dir / f"{schedule}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(raw))
        subprocess.run([sys.executable, __file__, "--runs-dir", str(args.runs_dir), "--train", str(path)], check=True)
        dirs[schedule] = next((args.runs_dir / schedule).glob("*/metrics.csv")).parent
    scan, full = curves(dirs["scan"]), curves(dirs["full"])
    table = Table(title=f"scan run of {args.config} at {args.factor:g} x lr: end-only validation vs the full schedule")
    for col in ("metric", "steps compared", "scan-run validation steps", "full validation steps", "differ"):
        table.add_column(col)
    differ = 0
    for key in DETERMINISTIC:
        common = sorted(set(scan.get(key, {})) & set(full.get(key, {})))
        n = sum(scan[key][s] != full[key][s] for s in common)
        differ += n + (not common)
        table.add_row(key, str(len(common)), str(sorted(scan.get(key, {}))[-3:]) if key == names.VAL_LOSS else "",
                      str(sorted(full.get(key, {}))) if key == names.VAL_LOSS else "", str(n))
    Console().print(table)
    last = max(scan[names.VAL_LOSS])
    print(f"final val/loss at step {last}: scan-run {scan[names.VAL_LOSS][last]}, full {full[names.VAL_LOSS][last]}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
