"""Time and peak memory of triangle attention per variant and implementation, versus n.

Each measurement runs one triangle-attention call over all n rows of an n × n pair tensor (B = 1, I = J = n),
forward alone and forward + backward, and reports the median of ``--repeats`` timed runs after one warm-up.
Peak memory is what the call adds on top of its inputs: CUDA's allocator peak, or on CPU the growth of the
process's peak resident set (VmHWM, reset through /proc/self/clear_refs before each run).

CPU (PyTorch paths):   python benchmarks/bench_triangle_attention.py --device cpu --sizes 32 64 128 256
GPU (all paths):       python benchmarks/bench_triangle_attention.py --device cuda --dtype bf16 \
                           --sizes 256 512 1024 2048 --heads 4 16 --impls torch triton trifast
``trifast`` (pip install trifast) is the published flash-style anchor (docs/DESIGN.md §5), softmax variant only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from models.kernels import triangle_attention

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def make_inputs(n: int, heads: int, head_dim: int, dtype: torch.dtype, device: str) -> list[torch.Tensor]:
    g = torch.Generator(device=device).manual_seed(0)
    shape = (1, n, heads, n, head_dim)
    qkv = [torch.randn(shape, generator=g, device=device).to(dtype) for _ in range(3)]
    bias = torch.randn(1, heads, n, n, generator=g, device=device).to(dtype)
    return [t.requires_grad_(True) for t in (*qkv, bias)]


def attention_fn(variant: str, impl: str, n: int, device: str) -> Callable[..., torch.Tensor]:
    mask = torch.ones(1, n, n, dtype=torch.bool, device=device)
    if impl == "trifast":
        from trifast import triangle_attention as trifast_attention

        no_padding = torch.zeros(1, n, n, dtype=torch.bool, device=device)  # trifast: True = masked score

        def run_trifast(q, k, v, bias):
            # trifast takes (B, H, I, J, D); these permutes are views, as an integration would pass them.
            perm = (0, 2, 1, 3, 4)
            return trifast_attention(q.permute(perm), k.permute(perm), v.permute(perm), bias, no_padding)

        return run_trifast

    def run(q, k, v, bias):
        return triangle_attention(q, k, v, bias, mask, variant=variant, impl=impl)

    return run


class PeakMemory:
    """Bytes a block adds at its peak on top of what was allocated before it."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.peak = _status_kib("VmHWM") * 1024 - self.start


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(fn, inputs, backward: bool, repeats: int, device: str) -> tuple[float, int]:
    """Median milliseconds and peak extra bytes of fn(*inputs) (and its backward)."""

    def once():
        for t in inputs:
            t.grad = None
        out = fn(*inputs)
        if backward:
            out.backward(torch.ones_like(out))
        return out

    once()  # warm-up: Triton compilation, allocator growth
    with PeakMemory(device) as memory:
        once()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        once()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return (statistics.median(times) if times else float("nan")), memory.peak


def bench_one(args: argparse.Namespace, variant: str, impl: str, heads: int, n: int) -> dict:
    """One table row: forward and forward+backward time and peak memory, or the error that stopped it."""
    row = dict(variant=variant, impl=impl, heads=heads, n=n)
    try:
        inputs = make_inputs(n, heads, args.head_dim, DTYPES[args.dtype], args.device)
        fn = attention_fn(variant, impl, n, args.device)
        row["fwd_ms"], row["fwd_bytes"] = measure(fn, inputs, False, args.repeats, args.device)
        row["fwdbwd_ms"], row["fwdbwd_bytes"] = measure(fn, inputs, True, args.repeats, args.device)
    except torch.OutOfMemoryError:
        row["error"] = "OOM"
    finally:
        inputs = None
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return row


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--heads", type=int, nargs="+", default=[4], help="H; c_z / 32 under the width rule")
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--variants", nargs="+", default=["vanilla", "gated", "additive"])
    parser.add_argument("--impls", nargs="+", default=["torch"], help="torch, triton, trifast")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument(
        "--measure", choices=["time", "memory"], default="time",
        help="CPU only: the allocator settings that make timings fast distort RSS, so measure one at a time",
    )  # fmt: skip
    args = parser.parse_args()
    if args.device == "cpu" and "SEEDFOLD_BENCH_MALLOC" not in os.environ:
        env = {**os.environ, **_cpu_malloc_env(args.measure)}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    if args.device == "cpu" and args.measure == "memory":
        args.repeats = 0  # timings under this allocator setting mean nothing
    rows = []
    print(f"device: {_device_name(args.device)}, dtype {args.dtype}, D={args.head_dim}, B=1, I=J=n")
    print("| variant | impl | H | n | fwd ms | fwd+bwd ms | fwd peak MiB | fwd+bwd peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for heads in args.heads:
        for variant in args.variants:
            for impl in args.impls:
                if impl == "trifast" and variant != "vanilla":
                    continue
                for n in args.sizes:
                    row = bench_one(args, variant, impl, heads, n)
                    rows.append(row)
                    print(_markdown_row(row), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(dict(device=_device_name(args.device), rows=rows), indent=1))


def _cpu_malloc_env(measure: str) -> dict[str, str]:
    """glibc settings for a CPU run, applied by re-executing the script.

    time: keep freed memory in the heap (page faults are expensive on these VMs, docs/DESIGN.md §5).
    memory: a fixed mmap threshold returns every large buffer to the OS, so VmHWM sees each run's own peak
    (by default glibc raises the threshold as buffers are freed, and later runs reuse heap memory unseen).
    """
    if measure == "memory":
        return {"SEEDFOLD_BENCH_MALLOC": "memory", "MALLOC_MMAP_THRESHOLD_": "65536"}
    return {"SEEDFOLD_BENCH_MALLOC": "time", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(10**11)}


def _markdown_row(row: dict) -> str:
    head = f"| {row['variant']} | {row['impl']} | {row['heads']} | {row['n']} |"
    if "error" in row:
        return head + f" {row['error']} | | | |"
    mib = 2**20
    return head + (
        f" {row['fwd_ms']:.2f} | {row['fwdbwd_ms']:.2f} |"
        f" {row['fwd_bytes'] / mib:.1f} | {row['fwdbwd_bytes'] / mib:.1f} |"
    )


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU, {torch.get_num_threads()} torch threads"


if __name__ == "__main__":
    main()
