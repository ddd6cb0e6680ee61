"""Does a trained confidence head know where its own predictions are right? pLDDT vs true lDDT.

Trains a miniature with the confidence loss on (``train.confidence_loss: true``, the confidence stage of the
recipe) on the bundled starter set, then samples every validation structure and correlates the head's per-token
pLDDT with the true per-token lDDT of the same sample (the head's own target, ``models.losses.plddt_target``:
lDDT of each atom against the token centre atoms within 15 Å / 30 Å, averaged over the token's atoms). The same
trunk with a freshly initialised head is the baseline (should give ~0). Intervals: 95% bootstrap over
structures (tokens of one structure are not independent), 2000 resamples.

    PYTHONPATH=$PWD python benchmarks/confidence_calibration.py --steps 300 --out /tmp/calib
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy import stats

from harness.config import RunConfig, parse_config
from harness.data.datamodule import StructureDataModule
from harness.predict import load_model
from harness.train.run import train_run
from models.init import apply_init
from models.losses import plddt_target


def run_config(out: Path, steps: int, seed: int) -> RunConfig:
    return parse_config(RunConfig, {
        "name": "confidence_calibration", "seed": seed, "runs_dir": str(out / "runs"),
        "model": {"preset": "base", "miniature": True},
        "data": {"crop_size": 32, "max_msa_rows": 8, "val_max_tokens": 96, "val_max_atoms": 1024},
        "train": {"max_steps": steps, "warmup_steps": 20, "lr": 2e-3, "diffusion_batch": 4, "max_cycles": 1,
                  "confidence_loss": True, "val_every": steps, "val_batches": 1, "val_sampling_steps": 20,
                  "checkpoint_every": steps, "log_every": 10, "threads": 1, "accelerator": "cpu", "devices": 1},
    }, "<confidence_calibration>")  # fmt: skip


def per_token(values: torch.Tensor, mask: torch.Tensor, atom_to_token: torch.Tensor, n_tokens: int) -> np.ndarray:
    """Mean of per-atom ``values`` (A,) over each token's atoms in ``mask``; NaN for tokens without any."""
    total = torch.zeros(n_tokens).scatter_add(0, atom_to_token, values * mask)
    count = torch.zeros(n_tokens).scatter_add(0, atom_to_token, mask.float())
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan).numpy()


@torch.no_grad()
def collect(model, loader, n_cycles: int, n_samples: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per structure: (pLDDT per token in [0, 1], true lDDT per token) over every sample."""
    out = []
    for i, batch in enumerate(loader):
        batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        g = torch.Generator().manual_seed(seed + i)
        pred = model.sample(batch, n_cycles=n_cycles, n_samples=n_samples, n_steps=20, generator=g)
        target, mask = plddt_target(pred["coords"], batch)
        n = int(batch["token_mask"].sum())
        a2t = batch["atom_to_token"][0]
        p, t = [], []
        for k in range(n_samples):
            p.append(per_token(pred["plddt"][0, k] / 100.0, mask[0], a2t, n)[:n])
            t.append(per_token(target[0, k], mask[0], a2t, n)[:n])
        p, t = np.concatenate(p), np.concatenate(t)
        ok = np.isfinite(p) & np.isfinite(t)
        out.append((p[ok], t[ok]))
    return out


def correlations(groups, n_boot: int = 2000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Pooled Pearson and Spearman r over all tokens, and the mean within-structure Pearson r (which ignores
    differences between structures), each with a 95% bootstrap interval resampling structures."""
    rng = np.random.default_rng(seed)
    within = np.array([stats.pearsonr(p, t)[0] if len(p) > 2 and p.std() > 0 else np.nan for p, t in groups])

    def all_three(sel):
        p = np.concatenate([groups[i][0] for i in sel])
        t = np.concatenate([groups[i][1] for i in sel])
        return stats.pearsonr(p, t)[0], stats.spearmanr(p, t)[0], np.nanmean(within[sel])

    point = all_three(np.arange(len(groups)))
    boot = np.array([all_three(rng.integers(0, len(groups), len(groups))) for _ in range(n_boot)])
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return {name: (point[j], lo[j], hi[j]) for j, name in enumerate(("pearson", "spearman", "within"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=2, help="samples per validation structure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh-heads", type=int, default=4, help="re-initialised heads as the chance baseline")
    parser.add_argument("--out", type=Path, default=Path("/tmp/confidence_calibration"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = run_config(args.out, args.steps, args.seed)
    t0, r0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    train_run(config, args.out / "run")
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    train_wall, train_cpu = time.time() - t0, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)

    dm = StructureDataModule(config.data, seed=config.seed)
    dm.setup("validate")
    loader = dm.val_dataloader()
    loaded = load_model(args.out / "run", use_ema=False)  # EMA (0.999) over a few hundred steps is ~the init
    rows = [("trained", collect(loaded.model, loader, 1, args.samples, args.seed))]
    # Baselines: the same trunk and samples, the head re-initialised with different seeds. A single random head
    # correlates by chance (its random projection of trunk features may track lDDT either way); the spread
    # over seeds is that chance level.
    for k in range(args.fresh_heads):
        fresh = load_model(args.out / "run", use_ema=False).model
        torch.manual_seed(1000 + k)
        apply_init(fresh.confidence_head, fresh.config.init)
        rows.append((f"fresh head {k}", collect(fresh, loader, 1, args.samples, args.seed)))

    trained = rows[0][1]
    table = Table(title=f"pLDDT vs true lDDT per token, {len(trained)} validation structures, "
                  f"{sum(len(g[0]) for g in trained)} token-samples ({args.samples} samples each)")
    for col in ("head", "pooled Pearson r [95% CI]", "pooled Spearman ρ [95% CI]", "within-structure r [95% CI]",
                "mean pLDDT", "mean lDDT"):
        table.add_column(col)
    for name, groups in rows:
        c = correlations(groups, seed=args.seed)
        p = np.concatenate([g[0] for g in groups])
        t = np.concatenate([g[1] for g in groups])
        table.add_row(name, *(f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for v in c.values()),
                      f"{p.mean():.3f}", f"{t.mean():.3f}")
    console = Console(width=140)
    console.print(table)
    console.print(f"training: {args.steps} steps, wall {train_wall:.0f} s, CPU (user+sys) {train_cpu:.0f} s, "
                  f"torch threads 1; shared 2-core machine")


if __name__ == "__main__":
    main()
