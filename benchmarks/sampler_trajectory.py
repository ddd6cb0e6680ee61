"""How good is the sampler's structure, step by step? lDDT of the denoiser's x₀ prediction along the trajectory.

For a trained run, samples fixed spatial crops of every validation structure with AF3 Algorithm 18 under several
sampler settings (AF3's γ₀ = 0.8, η = 1.5; η = 1; no churn) and scores, at each step, the lDDT of the denoiser's
current x₀ prediction against the truth (the pLDDT target's lDDT, ``models.losses.plddt_target``), and the final
sample. Also one-shot denoising of the truth plus noise at fixed σ, the reference for what the denoiser knows.
Means ± standard errors over crops × samples.

    PYTHONPATH=$PWD python benchmarks/sampler_trajectory.py /tmp/confidence_calibration/run
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from harness.data.collate import collate
from harness.data.datamodule import StructureDataModule
from harness.predict import load_model
from models.losses import plddt_target
from models.sampling import centre_random_augmentation, noise_schedule, sample_diffusion

SETTINGS = {
    "AF3 (γ₀ 0.8, η 1.5)": {},
    "η 1.0": {"step_scale": 1.0},
    "η 1.0, no churn": {"step_scale": 1.0, "gamma_0": 0.0},
    "η 1.5, no churn": {"gamma_0": 0.0},
}


def lddt_per_sample(x: torch.Tensor, batch: dict) -> np.ndarray:
    """Mean per-atom lDDT of each sample: x (1, S, A, 3) -> (S,)."""
    target, mask = plddt_target(x, batch)
    m = mask[:, None].float()
    return ((target * m).sum(-1) / m.sum(-1).clamp(min=1))[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder or .ckpt")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--crops", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ema", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.run, use_ema=args.ema, device="cpu")
    model, config = loaded.model.eval(), loaded.config
    dm = StructureDataModule(config.data.model_copy(update={"val_max_tokens": args.tokens}), seed=config.seed)
    dm.setup("validate")
    val = dm.val_set
    sigmas = noise_schedule(args.steps, model.config.sigma_data)
    shown = list(range(0, args.steps, max(1, args.steps // 10)))
    traj = {name: [] for name in SETTINGS}
    final = {name: [] for name in SETTINGS}
    oneshot_sigmas = (0.5, 2.0, 8.0, 32.0, 128.0)
    oneshot = {s: [] for s in oneshot_sigmas}
    with torch.no_grad():
        for i in range(len(val)):
            entry = val.entries[i]["entry_id"]
            for c in range(args.crops):
                batch = collate([val.get(i, (zlib.crc32(entry.encode()) + 104_729 * c) & 0x7FFFFFFF)])
                batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
                trunk = model.trunk(batch, n_cycles=1)
                z_cond = model.diffusion_module.conditioning.pair(batch, trunk["z"])
                for name, overrides in SETTINGS.items():
                    along = []

                    def denoise(x, sigma, along=along, batch=batch, trunk=trunk, z_cond=z_cond):
                        x0 = model.diffusion_module.chunked(x, sigma, batch, trunk["s_inputs"], trunk["s"],
                                                            trunk["z"], z_cond=z_cond)
                        along.append(lddt_per_sample(x0, batch))
                        return x0

                    constants = model.config.sampler.model_copy(update=overrides)
                    x = sample_diffusion(denoise, batch["atom_mask"], n_samples=args.samples, n_steps=args.steps,
                                         sigma_data=model.config.sigma_data,
                                         generator=torch.Generator().manual_seed(i * 100 + c), sampler=constants)
                    traj[name].append(np.stack(along))  # (steps, S)
                    final[name].append(lddt_per_sample(x, batch))
                mask = batch["gt_atom_mask"] & batch["atom_mask"]
                g = torch.Generator().manual_seed(i * 100 + c)
                for s in oneshot_sigmas:
                    x_gt = batch["gt_coords"].float()[:, None].expand(-1, args.samples, -1, -1)
                    x0 = centre_random_augmentation(x_gt, mask, generator=g)
                    noisy = x0 + s * torch.randn(x0.shape, generator=g) * batch["atom_mask"][:, None, :, None]
                    den = model.diffusion_module.chunked(noisy, torch.full((1, args.samples), s), batch,
                                                         trunk["s_inputs"], trunk["s"], trunk["z"])
                    oneshot[s].append(lddt_per_sample(den, batch))

    def fmt(values: np.ndarray) -> str:
        return f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(values.size):.3f}"

    n_crops = len(final[next(iter(SETTINGS))])
    console = Console(width=200)
    table = Table(title=f"lDDT of the x₀ prediction along {args.steps} sampler steps: {n_crops} crops of ≤ "
                  f"{args.tokens} tokens × {args.samples} samples, step {loaded.step} "
                  f"({'EMA' if loaded.ema else 'raw'} weights)")
    table.add_column("sampler")
    for k in shown:
        table.add_column(f"σ {sigmas[k]:.3g} Å")
    table.add_column("final sample")
    for name in SETTINGS:
        steps = np.stack(traj[name])  # (crops, steps, S)
        table.add_row(name, *(fmt(steps[:, k].ravel()) for k in shown), fmt(np.concatenate(final[name])))
    console.print(table)
    console.print("one-shot denoising of truth + σ noise: " + "; ".join(
        f"σ {s:g} Å {fmt(np.concatenate(v))}" for s, v in oneshot.items()))


if __name__ == "__main__":
    main()
