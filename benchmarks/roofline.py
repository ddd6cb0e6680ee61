"""Roofline of the triangle-attention kernels and of one Pairformer block on H100 and A100 (no GPU needed):
analytic FLOPs, exponentials and bytes (``models.kernels.roofline``) and the ideal time each implies.

    python benchmarks/roofline.py                 # kernels at n = 384 … 2048, H = 4 / 16; block at c_z 128/256/512
    python benchmarks/roofline.py --n 384 768     # other lengths

``benchmarks/gpu_check.py`` divides its measured times by these (``measured / ideal``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from models.kernels.roofline import DEVICES, attention_costs, pairformer_block_cost  # noqa: E402


def kernel_table(lengths: list[int], heads: list[int]) -> Table:
    table = Table(title="Triangle-attention kernels, bf16, d = 32, B = 1, all n rows: ideal time (bound)")
    for col in ("variant", "kernel", "n", "H", "GFLOP", "G exp", "MB", *(f"{d} ms" for d in DEVICES)):
        table.add_column(col, justify="left" if col in ("variant", "kernel") else "right")
    for variant in ("vanilla", "gated"):
        for n in lengths:
            for h in heads:
                for kernel, cost in attention_costs(variant, n, h).items():
                    name = kernel if variant == "vanilla" else kernel.replace("dbias", "dgate")
                    ideal = (f"{cost.ideal_s(d) * 1e3:.3f} ({cost.bound(d)})" for d in DEVICES.values())
                    table.add_row(variant, name, str(n), str(h), f"{cost.flops / 1e9:.1f}", f"{cost.exps / 1e9:.2f}",
                                  f"{cost.bytes / 1e6:.0f}", *ideal)  # fmt: skip
    return table


def block_table(lengths: list[int], widths: list[int]) -> Table:
    table = Table(title="One Pairformer block, forward, bf16, B = 1 (a training step is ~3×): ideal time (bound)")
    for col in ("c_z", "n", "GFLOP", "G exp", "MB", *(f"{d} ms" for d in DEVICES)):
        table.add_column(col, justify="right")
    for c_z in widths:
        for n in lengths:
            cost = pairformer_block_cost(c_z, n)
            table.add_row(str(c_z), str(n), f"{cost.flops / 1e9:.0f}", f"{cost.exps / 1e9:.2f}",
                          f"{cost.bytes / 1e6:.0f}",
                          *(f"{cost.ideal_s(d) * 1e3:.2f} ({cost.bound(d)})" for d in DEVICES.values()))  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[384, 768, 2048])
    parser.add_argument("--heads", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--c-z", type=int, nargs="+", default=[128, 256, 512])
    args = parser.parse_args(argv)
    console = Console(width=160)
    for d in DEVICES.values():
        console.print(f"{d.name}: {d.bf16_flops / 1e12:.0f} TFLOP/s bf16, {d.sfu_ops / 1e12:.1f} T exp/s, "
                      f"{d.hbm_bytes / 1e12:.2f} TB/s")  # fmt: skip
    console.print(kernel_table(args.n, args.heads))
    console.print(block_table(args.n, args.c_z))


if __name__ == "__main__":
    main()
