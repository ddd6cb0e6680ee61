"""Traced peak memory per GPU of one training step, per run and stage, of a sweep profile (default: the paper
profile of sweeps/width_vs_depth.yaml), with the chunking in effect and the CPU time the traces took; the traces
are written to the shipped cache (harness/memory/traces.json) so that `harness sweep --dry-run` reads them.

    python benchmarks/bench_memory_trace.py [--sweep FILE] [--profile paper] [--run LABEL] [--stage N] [--no-store]

Several processes may trace into the same cache at once (one per run and stage, say): writes are locked.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from harness.memory.cache import SHIPPED, TraceCache
from harness.memory.plan import plan_stage
from harness.recipe import plan_stages
from harness.sweep.service import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="sweeps/width_vs_depth.yaml")
    parser.add_argument("--profile", action="append", help="repeatable; default: paper")
    parser.add_argument("--run", action="append", help="only these run labels (repeatable)")
    parser.add_argument("--stage", action="append", type=int, help="only these stages, 0-based (repeatable)")
    parser.add_argument("--no-store", action="store_true", help="use the user's cache, not the shipped file")
    args = parser.parse_args()
    cache = TraceCache(path=None if args.no_store else SHIPPED)
    get = cache.get

    def logged(arch, shape):  # one line per trace on stderr, to follow a long run
        t0, traced = time.process_time(), cache.traced
        memory = get(arch, shape)
        if cache.traced > traced:
            print(f"  traced pf {arch.n_pairformer_blocks} diff {arch.n_diffusion_blocks} c_z {arch.c_z} crop "
                  f"{shape.n_tokens} copies {arch.policy.diffusion_chunk_size}/{shape.diffusion_batch} sub-layers "
                  f"{arch.policy.checkpoint_sublayers} group {arch.policy.checkpoint_group}: "
                  f"{memory.peak_gb:.2f} GB, {time.process_time() - t0:.0f} CPU s", file=sys.stderr, flush=True)
        return memory

    cache.get = logged
    print("| profile | run | crop tok/atoms | diffusion copies per call | lDDT rows | traced GB "
          "| params+grads+Adam+EMA GB | activations GB | temporaries GB | traces | CPU s (run so far) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for profile in args.profile or ["paper"]:
        for spec in _prepared(args.sweep, profile):
            if args.run and spec.label not in args.run:
                continue
            before, t0 = cache.traced, time.process_time()
            stages = plan_stages(spec.config)
            for p in (plan_stage(spec.config, stages[i], cache) for i in args.stage or range(len(stages))):
                c = p.memory.by_category
                states = sum(c[k] for k in ("parameters", "gradients", "optimizer", "other")) / 1e9
                chunk = "all" if p.diffusion_chunk is None else p.diffusion_chunk
                sub = (" + sub-layer ckpt" if p.sublayers else "") + (f" + groups of {p.group}" if p.group > 1 else "")
                print(f"| {profile} | {spec.label} | {p.crop_tokens}/{p.atoms} | {chunk}/{p.diffusion_batch}"
                      f" ({p.chunk_source}){sub} | {p.lddt_block_rows} | {p.memory.peak_gb:.1f} | {states:.1f} | "
                      f"{c['activations'] / 1e9:.1f} | {c['temporaries'] / 1e9:.1f} | {cache.traced - before} | "
                      f"{time.process_time() - t0:.0f} |", flush=True)


def _prepared(sweep: str, profile: str) -> list:
    """The sweep's run specs, prepared without tracing (preparing resolves each run's recipe, which would trace
    every run into the user's cache; here each process traces only the runs it was given, into ``cache``)."""
    previous = os.environ.get("SEEDFOLD_TRACE")
    os.environ["SEEDFOLD_TRACE"] = "off"
    try:
        return prepare(sweep, profile=profile, executor="local").specs
    finally:
        if previous is None:
            del os.environ["SEEDFOLD_TRACE"]
        else:
            os.environ["SEEDFOLD_TRACE"] = previous


if __name__ == "__main__":
    main()
