"""The memorisation check after the fact, for runs recorded before the trainer logged ``train_probe/*``.

For every finished run folder of a sweep: the validation estimator (``harness/train/validation.py``, the run's
own settings) on its fixed validation crops and on the train probe (as many fixed crops of training
structures, ``train_probe_picks``), with the initial weights (rebuilt from the run's seed exactly as
``train_run`` builds them) and with the final EMA weights. Then the table ``analysis.memorisation`` gives the
report: per configuration, how much the val − train gap grew with training, with its interval over seeds.

    python benchmarks/memorisation_probe.py runs/long/width_vs_depth [--csv out.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import yaml
from rich.console import Console
from rich.table import Table

from analysis.memorisation import PROBE, PROBE_NOISE, VAL, VAL_NOISE, memorisation_table
from harness.config import RunConfig
from harness.config_files import parse_config
from harness.data.datamodule import StructureDataModule
from harness.predict import load_model
from harness.recipe import plan_stages
from harness.tracking import names
from harness.train.module import SeedFoldModule
from harness.train.validation import Validator, shard, train_probe_picks


def score(model, config: RunConfig, loss_weights: dict, val, probe) -> dict[str, float]:
    validator = Validator(model, config.train, loss_weights=loss_weights)
    out = {}
    for (metric, noise), examples in (((VAL, VAL_NOISE), val), ((PROBE, PROBE_NOISE), probe)):
        m = validator.estimator.metrics(validator.sums(examples, "cpu", with_lddt=False, with_baseline=False),
                                        with_lddt=False, with_baseline=False)
        out[metric], out[noise] = m[names.VAL_LOSS], m[names.VAL_LOSS_NOISE]
    return out


def probe_run(folder: Path) -> list[dict]:
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    raw.pop("derived", None)  # the run's record of what it derived
    config = parse_config(RunConfig, raw, str(folder / "config.yaml"))
    dm = StructureDataModule(config.data, seed=config.seed, val_seed=config.train.val_seed)
    dm.setup("validate")
    n_val = len(dm.val_set) if config.train.val_batches is None else min(len(dm.val_set), config.train.val_batches)
    val = list(shard(dm.val_set, n_val, 0, 1))
    probe = list(shard(torch.utils.data.Subset(dm.train_probe_set, train_probe_picks(len(dm.train_probe_set),
                                                                                        n_val)), None, 0, 1))
    L.seed_everything(config.seed, workers=True, verbose=False)  # as train_run does, before the module
    initial = SeedFoldModule(config, stage=plan_stages(config)[0])
    initial.model.eval()
    loaded = load_model(folder, use_ema=True)
    loaded.model.eval()
    name = folder.name.rsplit("-", 1)[0]
    config_name = name.rsplit("-s", 1)[0]
    rows = []
    for step, model in ((0, initial.model), (loaded.step, loaded.model)):
        rows.append({"run": folder.name, "config": config_name, "seed": config.seed, "step": step,
                     **score(model, config, initial.loss_weights, val, probe)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="<runs_dir>/<sweep>/ holding the run folders")
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folders = sorted(p.parent for p in args.sweep_dir.glob("*/config.yaml") if (p.parent / "checkpoints").is_dir())
    rows = [r for f in folders for r in probe_run(f)]
    frame = pd.DataFrame(rows)
    if args.csv:
        frame.to_csv(args.csv, index=False)
    console = Console(width=160)
    runs = Table(title="val/loss and train-probe loss per run (initial and final EMA weights)")
    for col in ("run", "step", "val/loss", "train_probe/loss", "gap"):
        runs.add_column(col, justify="right")
    for r in rows:
        runs.add_row(r["run"], str(r["step"]), f"{r[VAL]:.4f} ± {r[VAL_NOISE]:.4f}",
                     f"{r[PROBE]:.4f} ± {r[PROBE_NOISE]:.4f}", f"{r[VAL] - r[PROBE]:+.4f}")
    console.print(runs)
    table = memorisation_table(frame)
    summary = Table(title="Memorisation per configuration (analysis.memorisation)")
    for col in table.columns:
        summary.add_column(str(col))
    for row in table.itertuples(index=False):
        summary.add_row(*(str(v) for v in row))
    console.print(summary)


if __name__ == "__main__":
    main()
