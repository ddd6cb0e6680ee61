"""Activation memory of one training forward under the memory policy, measured on CPU, next to the dry-run's
estimate (``harness.sweep.estimate.memory_gb``) and the step time.

Measured: bytes of the distinct tensor storages autograd keeps for backward (a ``saved_tensors_hooks`` pack hook,
deduplicated by storage), i.e. the activation memory a GPU would hold at the end of the forward. Under per-block
checkpointing the recomputed blocks save nothing during the forward, so the number is what stays alive; the
transient peak of one recomputed block comes on top in backward. Step time: forward + backward, median of 3.

    python benchmarks/bench_memory_policy.py [--tokens 96] [--c-z 32] [--blocks 4] [--msa-rows 16]
"""

from __future__ import annotations

import argparse
import time

import torch

from harness.config import RunConfig
from harness.sweep.estimate import ExampleSize, memory_gb
from models.accounting import count_parameters
from models.losses import compute_losses
from models.model import SeedFold
from tests.models.conftest import collate, random_example

SETTINGS = {
    "fp32, no checkpointing": {"opm_chunk_size": None},
    "fp32, checkpointing": {"checkpoint_blocks": True},
    "bf16 trunk, checkpointing": {"checkpoint_blocks": True, "trunk_precision": "bf16"},
    "bf16 trunk, checkpointing, diffusion chunk 2": {"checkpoint_blocks": True, "trunk_precision": "bf16",
                                                     "diffusion_chunk_size": 2},
}


def saved_bytes(model: SeedFold, batch: dict, diffusion_batch: int) -> tuple[float, float]:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(batch, n_cycles=1, diffusion_batch=diffusion_batch, generator=torch.Generator().manual_seed(0))
        loss = compute_losses(out, batch)["loss"]
    loss.backward()
    return sum(storages.values()), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--c-z", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--diffusion-batch", type=int, default=8)
    ap.add_argument("--msa-rows", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    batch = collate([random_example(args.tokens, atoms_per_token=8, n_msa=args.msa_rows, seed=0)])
    example = ExampleSize(args.tokens, args.tokens * 8, args.msa_rows)
    print("| setting | saved for backward MB | estimate MB (activations) | fwd+bwd s |\n|---|---|---|---|")
    for name, policy in SETTINGS.items():
        model_raw = {"preset": "base", "miniature": True, "c_z": args.c_z, "c_m": 16, "tri_att_head_dim": 8,
                     "n_pairformer_blocks": args.blocks, "n_msa_blocks": 1, "policy": policy}
        config = RunConfig.model_validate({"model": model_raw, "data": {
            "crop_size": args.tokens, "max_msa_rows": args.msa_rows,
            "max_msa_rows_cached": max(args.msa_rows, 1024)}})
        torch.manual_seed(0)
        model = SeedFold(config.model.architecture()).train()
        times, measured = [], 0.0
        for _ in range(3):
            measured, dt = saved_bytes(model, batch, args.diffusion_batch)
            times.append(dt)
        states = count_parameters(config.model.architecture())["total"] * 20
        ckpt = bool(policy.get("checkpoint_blocks"))
        est = memory_gb(config, example, args.diffusion_batch, checkpointed=ckpt) * 1e9 - states
        print(f"| {name} | {measured / 2**20:.1f} | {est / 2**20:.1f} | {sorted(times)[1]:.2f} |")


if __name__ == "__main__":
    main()
