"""One Pairformer block side by side with Boltz 2.2.1's PyTorch ``PairformerLayer`` (and the block as it was
before the CPU speed work, read from git history: see ``OLD_BLOCK``): forward+backward time and bytes saved for
backward.

Same dims for all three: c_s, c_z, triangle-attention heads c_z/32 of width 32, 4 single-attention heads,
transition ×4, vanilla softmax triangle attention, no dropout, PyTorch paths only (no kernels), fp32, B = 1,
no padding. Repetitions are interleaved (old, new, Boltz in a shuffled order each round) in one process, so
load from other jobs on a shared machine falls on all three alike; the table gives medians with the
interquartile range and the ratios new/Boltz (wall and CPU time, user+sys of the process) and new/old of the
medians. ``--table JSON`` reprints the table of an earlier ``--out``.

Saved bytes: the distinct storages autograd saves during the forward (``saved_tensors_hooks``), parameters
excluded, i.e. the activation memory a training step holds between forward and backward.

Boltz is a benchmark-only dependency: ``pip install --no-deps boltz==2.2.1 einops``.

    python benchmarks/bench_pairformer_vs_boltz.py --widths 32 64 128 --lengths 64 128 --repeats 15
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from harness.allocator import tune_allocator
from models.config import ModelConfig
from models.modules.pairformer import PairformerBlock

C_S, HEAD_DIM, SINGLE_HEADS = 64, 32, 4
# The block before the CPU speed work (commit ed94538), as the frozen copy this commit added for the side-by-side
# timing (same parameter names as today's block, so one state dict loads into both); git keeps it.
OLD_BLOCK = ("ab097507131e182a82b8ec371a7db37466e0daaa", "benchmarks/pairformer_before.py")


def load_old_block() -> types.ModuleType:
    """The module of ``OLD_BLOCK``, read with ``git show`` from this checkout's history into a fresh module."""
    commit, path = OLD_BLOCK
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(["git", "-C", str(root), "show", f"{commit}:{path}"], check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        why = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        raise SystemExit(f"the 'old' Pairformer block is read from git history ({commit[:7]}:{path}), which this "
                         f"checkout at {root} cannot provide ({why}); run the benchmark in a clone with the "
                         "project's full history (not a shallow clone or an exported tree)") from exc
    module = types.ModuleType("pairformer_before")
    exec(compile(source, f"{commit[:7]}:{path}", "exec"), module.__dict__)  # noqa: S102 (our own history)
    return module


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """N(0, 0.1²) weights everywhere (LayerNorm scales 1 + that) so no zero-initialised branch is skipped."""
    scales = {f"{m}.weight" for m, mod in module.named_modules() if isinstance(mod, torch.nn.LayerNorm)}
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g) + (1.0 if name in scales else 0.0))


def build(c_z: int) -> dict[str, tuple[torch.nn.Module, callable]]:
    """name -> (module, step(s, z, mask) -> (s, z)) for old, new and (if importable) Boltz."""
    cfg = ModelConfig(
        c_s=C_S, c_z=c_z, tri_att_head_dim=HEAD_DIM, n_single_heads=SINGLE_HEADS, triangle_attention="vanilla",
        kernel_impl="torch", pair_dropout=0.0,
    )  # fmt: skip
    new = PairformerBlock(cfg, C_S, c_z)
    _randomise(new, 0)
    old = load_old_block().PairformerBlock(cfg, C_S, c_z)
    old.load_state_dict(new.state_dict())
    models = {
        "old": (old, lambda s, z, m: old(s, z, m)),
        "new": (new, lambda s, z, m: new(s, z, m)),
    }
    try:
        from boltz.model.layers.pairformer import PairformerLayer
    except ImportError as err:
        print(f"Boltz not importable ({err}); timing old and new only", file=sys.stderr)
        return models
    boltz = PairformerLayer(
        C_S, c_z, num_heads=SINGLE_HEADS, dropout=0.0, pairwise_head_width=HEAD_DIM,
        pairwise_num_heads=c_z // HEAD_DIM, v2=True,
    )  # fmt: skip
    _randomise(boltz, 0)

    def boltz_step(s, z, m):
        mf = m.float()
        return boltz(s, z, mf, mf[:, :, None] * mf[:, None, :])

    models["boltz"] = (boltz, boltz_step)
    return models


def fwd_bwd(module, step, s, z, mask) -> tuple[float, float, int]:
    """(wall s, CPU s, saved bytes) of one forward+backward."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    module.zero_grad(set_to_none=True)
    s_in, z_in = s.detach().requires_grad_(True), z.detach().requires_grad_(True)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        s_out, z_out = step(s_in, z_in, mask)
    (s_out.sum() + z_out.sum()).backward()
    return time.perf_counter() - wall, _cpu_seconds() - cpu, sum(saved.values())


def measure(c_z: int, n: int, repeats: int, warmup: int = 2, seed: int = 0) -> list[dict]:
    """Interleaved repetitions at one size; one row per implementation."""
    torch.manual_seed(seed)
    models = build(c_z)
    s, z = torch.randn(1, n, C_S), torch.randn(1, n, n, c_z)
    mask = torch.ones(1, n, dtype=torch.bool)
    order = list(models)
    samples = {name: {"wall": [], "cpu": [], "saved": 0} for name in models}
    rng = random.Random(seed)
    for rep in range(warmup + repeats):
        rng.shuffle(order)
        for name in order:
            wall, cpu, saved = fwd_bwd(*models[name], s, z, mask)
            if rep >= warmup:
                samples[name]["wall"].append(wall)
                samples[name]["cpu"].append(cpu)
                samples[name]["saved"] = saved
    rows = []
    for name, got in samples.items():
        q1, med, q3 = np.percentile(got["wall"], [25, 50, 75])
        rows.append({
            "impl": name, "c_z": c_z, "n": n, "repeats": repeats, "median_ms": 1e3 * med,
            "iqr_ms": [1e3 * q1, 1e3 * q3], "cpu_median_ms": 1e3 * float(np.median(got["cpu"])),
            "saved_bytes": got["saved"],
        })  # fmt: skip
    return rows


def ratio_table(rows: list[dict]) -> str:
    """Markdown: per size, medians [IQR] of each impl, and new/Boltz, new/old ratios of time and saved bytes."""
    by = {(r["c_z"], r["n"], r["impl"]): r for r in rows}
    sizes = sorted({(r["c_z"], r["n"]) for r in rows})
    has_boltz = any(r["impl"] == "boltz" for r in rows)
    head = "| c_z | n | old ms [IQR] | new ms [IQR] |"
    head += " Boltz ms [IQR] | new/Boltz time | new/Boltz CPU time | new/Boltz saved |" if has_boltz else ""
    head += " new/old time | saved MiB old / new" + (" / Boltz |" if has_boltz else " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def cell(r):
        return f"{r['median_ms']:.1f} [{r['iqr_ms'][0]:.1f}–{r['iqr_ms'][1]:.1f}]"

    for c_z, n in sizes:
        old, new = by[(c_z, n, "old")], by[(c_z, n, "new")]
        line = f"| {c_z} | {n} | {cell(old)} | {cell(new)} |"
        mib = [old["saved_bytes"] / 2**20, new["saved_bytes"] / 2**20]
        if has_boltz:
            bz = by[(c_z, n, "boltz")]
            line += f" {cell(bz)} | {new['median_ms'] / bz['median_ms']:.2f} |"
            line += f" {new['cpu_median_ms'] / bz['cpu_median_ms']:.2f} |"
            line += f" {new['saved_bytes'] / bz['saved_bytes']:.2f} |"
            mib.append(bz["saved_bytes"] / 2**20)
        line += f" {new['median_ms'] / old['median_ms']:.2f} | " + " / ".join(f"{m:.1f}" for m in mib) + " |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="JSON of every row")
    parser.add_argument("--table", type=Path, default=None, help="print the table of an earlier --out JSON")
    args = parser.parse_args()
    if args.table:
        print(ratio_table(json.loads(args.table.read_text())["rows"]))
        return
    malloc = tune_allocator()  # the same allocator for all three; SEEDFOLD_MALLOC=off to compare without
    torch.set_num_threads(args.threads)
    rows = []
    for c_z in args.widths:
        for n in args.lengths:
            rows += measure(c_z, n, args.repeats)
            print(ratio_table([r for r in rows if (r["c_z"], r["n"]) == (c_z, n)]).splitlines()[-1], flush=True)
    print(f"\n{torch.get_num_threads()} threads, torch {torch.__version__}, {args.repeats} interleaved repeats, "
          f"malloc {malloc}\n")  # fmt: skip
    print(ratio_table(rows))
    if args.out:
        meta = {"threads": args.threads, "torch": torch.__version__, "malloc": malloc}
        args.out.write_text(json.dumps(meta | {"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
