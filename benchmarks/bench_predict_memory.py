"""Peak memory of the pair operations at inference, chunked (``harness predict``'s ``--chunk-size``, chosen
by ``auto_chunk_size``) and not, up to 2,000 tokens at the paper's pair widths.

What runs (``--modules``): one Pairformer block of the preset (triangle multiplications, triangle
attention, pair transition, single attention and transition; blocks run one after another without autograd,
so one block's transient is what a whole trunk adds on top of the tensors it keeps), the diffusion module's
pair conditioning (its (N, N, 2·c_z) concatenation and two pair transitions), or one op of the pair block
(pair transition, outgoing triangle multiplication, starting-node triangle attention), on a pair z of N
tokens, B = 1, fp32, no autograd.

How it is measured (CPU; on CUDA ``torch.cuda.max_memory_allocated`` would do): each case runs in a fresh
process whose glibc allocator maps every allocation above 64 KiB on its own (``MALLOC_MMAP_THRESHOLD_``), so
the resident set grows and shrinks with the live tensors; the figure is the peak resident set during the call
(the high-water mark is reset just before it, ``/proc/self/clear_refs``) minus the resident set just before it
(inputs allocated and touched), i.e. the transient the call adds. The ratio
to the bytes of z is what makes sizes comparable: unchunked, the pair transition alone holds 12 z-sized
tensors (2·4 hidden channels per channel, plus its SwiGLU product).

    python benchmarks/bench_predict_memory.py                      # 256 … 2000 tokens, c_z 128 (base)
    python benchmarks/bench_predict_memory.py --tokens 512 --c-z 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
from models.presets import get_preset
from models.modules.pairformer import PairformerBlock
from models.modules.diffusion import DiffusionConditioning

module_name, n, c_z, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
chunk = None if chunk == "none" else int(chunk)
torch.set_num_threads(int(sys.argv[5]))
config = get_preset("base", c_z=c_z, kernel_impl="torch")

def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def reset_peak() -> None:
    # Linux: "5" resets the high-water mark (VmHWM), so start-up's own peak does not count.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

def rss_peak() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

def set_chunk(module):
    for m in module.modules():
        if hasattr(m, "chunk_size") and not isinstance(m, torch.nn.ModuleList):
            m.chunk_size = chunk

if module_name == "pairformer_block":
    module = PairformerBlock(config, config.c_s, c_z).eval()
    def call(n_tok):
        s = torch.randn(1, n_tok, config.c_s); z = torch.randn(1, n_tok, n_tok, c_z)
        mask = torch.ones(1, n_tok, dtype=torch.bool)
        return (s, z, mask), lambda: module(s, z, mask)
elif module_name in ("pair_transition", "tri_mul_out", "tri_att_start"):
    from models.modules.pairformer import PairBlock
    block = PairBlock(config, c_z)
    module = {"pair_transition": block.transition, "tri_mul_out": block.tri_mul_out,
              "tri_att_start": block.tri_att_start}[module_name].eval()
    def call(n_tok):
        z = torch.randn(1, n_tok, n_tok, c_z)
        mask = torch.ones(1, n_tok, n_tok, dtype=torch.bool)
        if module_name == "pair_transition":
            return (z,), lambda: module(z)
        return (z, mask), lambda: module(z, mask)
else:
    module = DiffusionConditioning(config).eval()
    def call(n_tok):
        z = torch.randn(1, n_tok, n_tok, c_z)
        idx = torch.arange(n_tok)[None]
        zeros = torch.zeros(1, n_tok, dtype=torch.long)
        batch = {"residue_index": idx, "token_index": idx, "asym_id": zeros, "entity_id": zeros, "sym_id": zeros,
                 "token_mask": torch.ones(1, n_tok, dtype=torch.bool)}
        return (z,), lambda: module.pair(batch, z)
for p in module.parameters():  # non-zero final projections, as a trained model has
    torch.nn.init.normal_(p, std=0.02)
set_chunk(module)
with torch.no_grad():
    _, warm = call(8)
    warm()
    inputs, run = call(n)
    reset_peak()
    before = rss_now()
    t0 = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - t0
    peak = rss_peak()
z_bytes = n * n * c_z * 4
print(json.dumps({"module": module_name, "tokens": n, "c_z": c_z, "chunk": chunk, "seconds": seconds,
                  "peak_extra_bytes": peak - before, "z_bytes": z_bytes}))
"""


def predicted_unchunked_gb(module: str, n: int, c_z: int, head_dim: int = 32) -> float:
    """What an unchunked call must hold at least: the pair transition's hidden tensors (12 z-sized) plus z, its
    LayerNorm and the output; for triangle attention, its (N, H, N, N) logits and their softmax."""
    pair = 15 * n * n * c_z * 4 / 1e9
    logits = 2 * n**3 * max(1, c_z // head_dim) * 4 / 1e9
    if module in ("pairformer_block", "tri_att_start"):
        return max(pair, logits)
    return pair


def measure(module: str, n: int, c_z: int, chunk: int | None, threads: int) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_MMAP_MAX_="1000000", SEEDFOLD_MALLOC="off",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    res = subprocess.run([sys.executable, "-c", CHILD, module, str(n), str(c_z), "none" if chunk is None else
                          str(chunk), str(threads)], capture_output=True, text=True, env=env, check=False)
    if res.returncode < 0:  # killed by a signal: on Linux SIGKILL here is the out-of-memory killer
        return {"module": module, "tokens": n, "c_z": c_z, "chunk": chunk,
                "skipped": f"killed by signal {-res.returncode} (out of memory)"}
    if res.returncode != 0:
        raise RuntimeError(f"{module} n={n} c_z={c_z} chunk={chunk}: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.predict import auto_chunk_size

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[256, 512, 1024, 2000])
    ap.add_argument("--c-z", type=int, default=128)
    ap.add_argument("--modules", nargs="+", default=["pairformer_block", "diffusion_pair_conditioning"],
                    help="pairformer_block, diffusion_pair_conditioning, or one op of the pair block: "
                    "pair_transition, tri_mul_out, tri_att_start")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-gb", type=float, default=16.0,
                    help="skip an unchunked case whose predicted peak exceeds this (the machine's memory)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    rows = []
    for module in args.modules:
        for n in args.tokens:
            for chunk in (None, auto_chunk_size(n) or max(8, n // 8)):
                need = predicted_unchunked_gb(module, n, args.c_z)
                if chunk is None and need > args.max_gb:
                    rows.append({"module": module, "tokens": n, "c_z": args.c_z, "chunk": None,
                                 "skipped": f"not run: needs ≥ {need:.0f} GB > --max-gb"})
                    continue
                rows.append(measure(module, n, args.c_z, chunk, args.threads))
    table = Table(title=f"Inference peak memory added by one call, c_z {args.c_z}, fp32, B 1, "
                        f"{args.threads} threads")
    for col in ("module", "tokens", "chunk", "z GB", "peak added GB", "× z", "seconds"):
        table.add_column(col, justify="right")
    for r in rows:
        if "skipped" in r:
            z_gb = r["tokens"] ** 2 * r["c_z"] * 4 / 1e9
            table.add_row(r["module"], str(r["tokens"]), str(r["chunk"] or "none"), f"{z_gb:.2f}", r["skipped"], "", "")
            continue
        z_gb, extra = r["z_bytes"] / 1e9, r["peak_extra_bytes"] / 1e9
        table.add_row(r["module"], str(r["tokens"]), str(r["chunk"] or "none"), f"{z_gb:.2f}", f"{extra:.2f}",
                      f"{extra / z_gb:.1f}", f"{r['seconds']:.1f}")
    Console(width=130).print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
