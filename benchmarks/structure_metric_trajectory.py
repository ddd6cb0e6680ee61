"""Why does a run's sampled validation lDDT fall while its loss falls? Score every kept checkpoint of a run
under controlled variants of the validation and print one row per (variant, step).

Each variant changes one thing against the run's own validation: the sampler's step scale η (AF3 1.5 vs 1.0),
the number of sampler steps, the validation crop (the training crop instead of 64 tokens), the weights (raw
instead of EMA). Every row also gives the contact precision from the distogram (top-L/5, separation ≥ 24 and
≥ 12), which needs no sampler. Values are means over the fixed validation set with their noise (the sampler's
draw noise for lDDT, the standard error over structures for contact precision).

    PYTHONPATH=$PWD python benchmarks/structure_metric_trajectory.py runs/.../<run key> [--every 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from harness.data.datamodule import StructureDataModule
from harness.predict import load_model
from harness.tracking import names
from harness.train.validation import Validator, shard

VARIANTS = {
    "run's own (EMA, η 1.5, 20 steps, val crop)": {},
    "η 1.0": {"step_scale": 1.0},
    "50 sampler steps": {"sampling_steps": 50},
    "val crop = train crop": {"train_crop": True},
    "raw weights (no EMA)": {"ema": False},
}


def score(run: Path, ckpt: Path, variant: dict, cache: dict) -> dict[str, float]:
    loaded = load_model(ckpt, use_ema=variant.get("ema", True), device="cpu")
    model, config = loaded.model, loaded.config
    if "step_scale" in variant:
        sampler = model.config.sampler.model_copy(update={"step_scale": variant["step_scale"]})
        model.config = model.config.model_copy(update={"sampler": sampler})
    train = config.train.model_copy(update={"val_sampling_steps": variant.get("sampling_steps",
                                                                                config.train.val_sampling_steps)})
    key = bool(variant.get("train_crop"))
    if key not in cache:
        data = config.data
        if key:
            data = data.model_copy(update={"val_max_tokens": data.crop_size, "val_max_atoms": data.atom_budget})
        dm = StructureDataModule(data, seed=config.seed, val_seed=config.train.val_seed)
        dm.setup("validate")
        cache[key] = dm.val_set
    validator = Validator(model, train)
    with torch.no_grad():
        sums = validator.sums(shard(cache[key], train.val_batches, 0, 1), "cpu", with_lddt=True,
                              with_baseline=False)
    return validator.estimator.metrics(sums, with_lddt=True, with_baseline=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder with kept checkpoints (train.milestone_every)")
    parser.add_argument("--every", type=int, default=1, help="score every n-th kept checkpoint")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="subset of the variants")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ckpts = sorted((args.run / names.CHECKPOINT_DIR).glob("step-*.ckpt"))[:: args.every]
    table = Table(title=f"structure metrics along {args.run.name}")
    for col in ("variant", "step", "val/loss", "sampled lDDT ± noise", "contact P@L/5 sep≥24 ± se",
                "sep≥12 ± se"):
        table.add_column(col)
    cache: dict = {}
    for name in args.variants:
        for ckpt in ckpts:
            m = score(args.run, ckpt, VARIANTS[name], cache)
            step = int(ckpt.stem.split("-")[1])
            table.add_row(name, str(step), f"{m[names.VAL_LOSS]:.3f}",
                          f"{m[names.VAL_LDDT]:.4f} ± {m[names.VAL_LDDT_NOISE]:.4f}",
                          f"{m.get(names.VAL_CONTACT_PRECISION, float('nan')):.3f} ± "
                          f"{m.get(names.VAL_CONTACT_PRECISION_NOISE, float('nan')):.3f}",
                          f"{m.get(names.VAL_CONTACT_PRECISION_SEP12, float('nan')):.3f} ± "
                          f"{m.get(names.VAL_CONTACT_PRECISION_SEP12_NOISE, float('nan')):.3f}")
            print(name, step, {k: round(v, 4) for k, v in m.items() if "sigma" not in k}, flush=True)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
