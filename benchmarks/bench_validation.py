"""The validation estimator's cost and noise (BENCHMARKS.md, "Validation estimator").

    python benchmarks/bench_validation.py [--run-dir RUN] [--draws 12] [--copies 2] [--nodes 7]

Scores one model (the EMA weights of RUN's last checkpoint, else an untrained base miniature) on the fixed
validation set of the mini profile, and prints: seconds per validation (cheap / with sampled lDDT), the noise
the estimator reports (from its own draws) and the brute-force noise (std over ``--draws`` re-evaluations with
independent seeds), relative to the val loss. With ``--compare RUN2``: the std over the same draws of the
difference val_loss(RUN) - val_loss(RUN2), which is what separates two configurations scored on shared draws.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from harness.config import RunConfig
from harness.config_files import set_dotted
from harness.data.datamodule import StructureDataModule
from harness.sweep.expand import load_sweep
from harness.tracking import names
from harness.train.validation import Validator, shard
from models.model import SeedFold


def load_model(run_dir: Path | None, config: RunConfig) -> SeedFold:
    model = SeedFold(config.model.architecture())
    if run_dir is not None:
        ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        shadow = ckpt["callbacks"]
        ema = next(v for k, v in shadow.items() if "EMA" in k)["shadow"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in ema.items()}, strict=False)
    return model.eval()


def stage_weights(config: RunConfig) -> dict[str, float]:
    """The loss weights of the run's first stage, as training uses them."""
    from harness.recipe import resolve

    return dict(resolve(config).stages[0].loss_weights)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in a log while it runs
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--copies", type=int)
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compare", type=Path, help="a second run: noise of the difference under shared draws")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.run_dir:
        config = RunConfig.model_validate(yaml.safe_load((args.run_dir / "config.yaml").read_text()))
    else:
        raw = {"model": {"preset": "base", "miniature": True}}
        for k, v in load_sweep("sweeps/width_vs_depth.yaml").profiles["mini"].overrides.items():
            set_dotted(raw, k, v)  # the mini profile as the sweep resolves it (sweeps/profiles/mini.yaml + deltas)
        config = RunConfig.model_validate(raw)
    update = {k: v for k, v in (("val_copies", args.copies), ("val_sigma_nodes", args.nodes)) if v}
    train = config.train.model_copy(update=update)
    model = load_model(args.run_dir, config)
    dm = StructureDataModule(config.data, seed=config.seed, val_seed=train.val_seed)
    dm.setup("validate")
    examples = list(shard(dm.val_set, train.val_batches, 0, 1))
    v = Validator(model, train, loss_weights=stage_weights(config))
    rows = []
    for with_lddt in (False, True):
        t, c = time.perf_counter(), cpu_s()
        sums = v.sums(examples, "cpu", with_lddt=with_lddt, with_baseline=False)
        rows.append((with_lddt, time.perf_counter() - t, cpu_s() - c))
    m = v.estimator.metrics(sums, with_lddt=True, with_baseline=False)
    print(f"validation costs (wall s, CPU s): {rows}; val/loss {m[names.VAL_LOSS]:.4g} "
          f"(noise {m[names.VAL_LOSS_NOISE]:.3g}), val/lddt {m[names.VAL_LDDT]:.4f}")
    again = v.estimator.metrics(v.sums(examples, "cpu", with_lddt=True, with_baseline=False),
                                with_lddt=True, with_baseline=False)
    other = None
    if args.compare:
        cfg2 = RunConfig.model_validate(yaml.safe_load((args.compare / "config.yaml").read_text()))
        other = Validator(load_model(args.compare, cfg2), cfg2.train.model_copy(update=update),
                          loss_weights=stage_weights(cfg2))
    losses, lddts, diffs = [], [], []
    for salt in range(1, args.draws + 1):
        d = v.estimator.metrics(v.sums(examples, "cpu", with_lddt=True, with_baseline=False, salt=salt),
                                with_lddt=True, with_baseline=False)
        losses.append(d[names.VAL_LOSS])
        lddts.append(d[names.VAL_LDDT])
        print(f"draw {salt}: val/loss {losses[-1]:.4g}, val/lddt {lddts[-1]:.4f}")
        if other is not None:
            d2 = other.estimator.metrics(other.sums(examples, "cpu", with_lddt=False, with_baseline=False,
                                                    salt=salt), with_lddt=False, with_baseline=False)
            diffs.append(d[names.VAL_LOSS] - d2[names.VAL_LOSS])
    print(f"model: {args.run_dir or 'untrained base miniature'}; {len(examples)} val examples, "
          f"{train.val_sigma_nodes} sigma nodes x {train.val_copies} copies, {train.val_samples} samples x "
          f"{train.val_sampling_steps} steps, {args.threads} thread(s)")
    print("| validation | wall s | CPU s |\n|---|---|---|")
    for with_lddt, wall, cpu in rows:
        print(f"| {'with sampled lDDT' if with_lddt else 'cheap (losses only)'} | {wall:.1f} | {cpu:.1f} |")
    print(f"repeat identical: {m == again}")
    loss, lddt = m[names.VAL_LOSS], m[names.VAL_LDDT]
    bl, bd = statistics.stdev(losses), statistics.stdev(lddts)
    print("| metric | value | reported noise (std) | brute-force std over draws | reported rel. |")
    print("|---|---|---|---|---|")
    print(f"| val/loss | {loss:.4g} | {m[names.VAL_LOSS_NOISE]:.3g} | {bl:.3g} | "
          f"{m[names.VAL_LOSS_NOISE] / loss:.2%} |")
    print(f"| val/lddt | {lddt:.4f} | {m[names.VAL_LDDT_NOISE]:.3g} | {bd:.3g} | "
          f"{m[names.VAL_LDDT_NOISE] / lddt:.2%} |")
    print(f"val/loss_bond {m[names.VAL_LOSS_BOND]:.4g} (x {v.estimator.w_diff:g} in val/loss)")
    if diffs:
        print(f"difference vs {args.compare.name}: mean {statistics.fmean(diffs):.4g}, std over shared draws "
              f"{statistics.stdev(diffs):.3g} ({statistics.stdev(diffs) / loss:.2%} of val/loss); "
              f"independent draws would give ~{math.sqrt(2) * bl:.3g}")
    for i in range(train.val_sigma_nodes):
        key = names.VAL_LOSS_DIFFUSION_AT_SIGMA.format(i=i)
        print(f"  sigma {v.estimator.quadrature.sigmas[i]:9.3f} A  w {v.estimator.quadrature.weights[i]:.4f}  "
              f"loss {m[key]:.4g}")


if __name__ == "__main__":
    main()
