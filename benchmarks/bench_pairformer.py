"""Forward+backward time and activation memory of one Pairformer block per triangle-attention variant, versus
sequence length and pair width, with fitted growth exponents (log-log least squares).

Memory: on CPU, the bytes of tensors saved for backward plus the outputs (``saved_tensors_hooks``), which is
what bounds training memory; on CUDA, ``torch.cuda.max_memory_allocated``.

    python benchmarks/bench_pairformer.py --lengths 64 128 256 512 --widths 16 32 64 128 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from models.config import ModelConfig
from models.modules.pairformer import PairformerBlock

VARIANTS = ("vanilla", "additive", "gated")


def _block(variant: str, c_z: int, c_s: int, device: str) -> PairformerBlock:
    head_dim = min(32, c_z)
    cfg = ModelConfig(
        c_z=c_z, c_s=c_s, n_single_heads=4, tri_att_head_dim=head_dim, triangle_attention=variant,
        kernel_impl="torch", pair_dropout=0.0,
    )  # fmt: skip
    return PairformerBlock(cfg, c_s, c_z).to(device)


def measure(variant: str, n: int, c_z: int, c_s: int = 64, repeats: int = 2, device: str = "cpu") -> dict:
    """Median fwd+bwd seconds and activation bytes of one block at n tokens."""
    torch.manual_seed(0)
    block = _block(variant, c_z, c_s, device)
    s = torch.randn(1, n, c_s, device=device, requires_grad=True)
    z = torch.randn(1, n, n, c_z, device=device, requires_grad=True)
    mask = torch.ones(1, n, dtype=torch.bool, device=device)
    times, saved = [], 0
    for rep in range(repeats + 1):
        saved_bytes = [0]

        def pack(t, acc=saved_bytes):
            acc[0] += t.numel() * t.element_size()
            return t

        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            s_out, z_out = block(s, z, mask)
        (s_out.sum() + z_out.sum()).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if rep > 0:  # the first run warms up allocator and caches
            times.append(elapsed)
        if device == "cuda":
            saved = torch.cuda.max_memory_allocated()
        else:
            saved = saved_bytes[0] + (s_out.numel() + z_out.numel()) * 4
    return {"variant": variant, "n": n, "c_z": c_z, "seconds": float(np.median(times)), "bytes": int(saved)}


def growth_exponent(xs: list[float], ys: list[float]) -> float:
    """Slope of log y against log x (least squares)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--width-for-lengths", type=int, default=32)
    parser.add_argument("--length-for-widths", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows, fits = [], {}
    for variant in VARIANTS:
        by_n = [measure(variant, n, args.width_for_lengths, repeats=args.repeats, device=args.device)
                for n in args.lengths]  # fmt: skip
        by_c = [measure(variant, args.length_for_widths, c, repeats=args.repeats, device=args.device)
                for c in args.widths]  # fmt: skip
        rows += by_n + by_c
        fits[variant] = {
            "time_vs_n": growth_exponent(args.lengths, [r["seconds"] for r in by_n]),
            "memory_vs_n": growth_exponent(args.lengths, [r["bytes"] for r in by_n]),
            "time_vs_c_z": growth_exponent(args.widths, [r["seconds"] for r in by_c]),
            "memory_vs_c_z": growth_exponent(args.widths, [r["bytes"] for r in by_c]),
        }
        for r in by_n + by_c:
            print(f"{variant:9s} n={r['n']:4d} c_z={r['c_z']:4d} {1e3 * r['seconds']:9.1f} ms "
                  f"{r['bytes'] / 2**20:9.1f} MiB", flush=True)  # fmt: skip
        print(f"{variant:9s} exponents {fits[variant]}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": args.device, "threads": torch.get_num_threads(), "rows": rows, "fits": fits}, f,
                      indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
