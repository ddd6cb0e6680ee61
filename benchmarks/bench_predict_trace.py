"""``harness predict`` at 384 / 1,024 / 2,000 tokens: peak GPU memory traced at the paper's sizes (fake tensors, as
on a GPU: ``models.memory.trace_predict_full_depth``) and CPU time measured on this machine at miniature sizes.

Memory: for each configuration of the paper profile, one target of N tokens, 7.8 atoms per token (the starter
set's mean), the profile's MSA rows, 5 samples drawn together, pair operations chunked as predict chunks them
(``auto_chunk_size``); the weights are the EMA copy alone on the device (the checkpoint stays on the CPU). Traced
at 1 and 2 blocks of each stack (Pairformer, diffusion transformer, confidence head) and extrapolated to the real
depth (extra blocks add only their weights without autograd); the sampler's steps and the recycling cycles do not
add memory (each replaces the last), so one cycle and two steps are traced.

Time: ``SeedFold.sample`` on this CPU with the miniature preset's real weights (random), the same shapes, one
recycling cycle per ``--cycles`` and ``--steps`` sampler steps: wall and CPU seconds per call (a paper-size model
at these sizes takes hours per call on 2 cores; the GPU time is not measured here).

    python benchmarks/bench_predict_trace.py [--tokens 384 1024 2000] [--runs base large] [--no-time]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from harness.data.config import STARTER_ATOMS_PER_TOKEN
from harness.memory.cache import trace_key
from harness.predict import auto_chunk_size
from harness.sweep.service import prepare
from models.memory import (
    PREDICT_DEPTH_FIELDS,
    PredictShape,
    StepMemory,
    StepShape,
    synthetic_batch,
    trace_predict_full_depth,
    trace_step,
)


def shape_of(n_tokens: int, n_msa: int, steps: int = 2) -> PredictShape:
    return PredictShape(n_tokens, round(STARTER_ATOMS_PER_TOKEN * n_tokens), n_msa, n_samples=5, n_steps=steps,
                        chunk_size=auto_chunk_size(n_tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[384, 1024, 2000])
    parser.add_argument("--runs", nargs="+", help="configurations of the paper profile (default: all)")
    parser.add_argument("--no-time", action="store_true", help="memory only")
    parser.add_argument("--no-memory", action="store_true", help="time only")
    parser.add_argument("--steps", type=int, default=200, help="sampler steps of the timed call")
    parser.add_argument("--cycles", type=int, default=4, help="recycling cycles of the timed call")
    parser.add_argument("--cache", default=str(Path.home() / ".cache/seedfold/predict_traces.json"),
                        help="the 1- and 2-block traces, kept across runs")
    args = parser.parse_args()
    # Preparing the sweep resolves each run's training recipe, which would trace its training steps: this script
    # traces predictions only (directly, not through the training-trace cache).
    os.environ["SEEDFOLD_TRACE"] = "off"
    specs = [s for s in prepare("sweeps/width_vs_depth.yaml", profile="paper", executor="local").specs
             if not args.runs or s.label in args.runs]
    if not args.no_memory:
        print("| run | tokens / atoms / MSA rows | chunk | traced peak GB | weights GB | rest GB | traces CPU s |")
        print("|---|---|---|---|---|---|---|")
        path = Path(args.cache)
        reduced = json.loads(path.read_text()) if path.exists() else {}

        def cached(arch, shape):  # deep_* share base's 1- and 2-block traces; reruns read the file
            key = "predict-" + trace_key(arch, shape)
            if key not in reduced:
                m = trace_predict_full_depth(arch, shape)
                reduced[key] = {"peak_bytes": m.peak_bytes, "by_category": m.by_category, "cpu_s": m.seconds}
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(reduced, indent=1, sort_keys=True) + "\n")
            hit = reduced[key]
            return StepMemory(hit["peak_bytes"], hit["by_category"], 1, hit["cpu_s"])

        for spec in specs:
            arch = spec.config.model.architecture()
            for n in args.tokens:
                shape = shape_of(n, spec.config.data.max_msa_rows)
                t0 = time.process_time()
                m = trace_step(arch, shape, trace=cached, fields=PREDICT_DEPTH_FIELDS)
                weights = (m.by_category["parameters"] + m.by_category["buffers"]) / 1e9
                print(f"| {spec.label} | {n} / {shape.n_atoms} / {shape.n_msa} | {shape.chunk_size} | "
                      f"{m.peak_gb:.1f} | {weights:.1f} | {m.peak_gb - weights:.1f} | "
                      f"{time.process_time() - t0:.0f} |", flush=True)
    if not args.no_time:
        from models.model import SeedFold

        mini = next(s for s in prepare("sweeps/width_vs_depth.yaml", profile="mini", executor="local").specs
                    if s.label.startswith("base"))
        torch.manual_seed(0)
        model = SeedFold(mini.config.model.architecture()).eval()
        print("\n| miniature base, CPU | tokens / atoms / MSA rows | chunk | cycles | steps | wall s | CPU s |")
        print("|---|---|---|---|---|---|---|")
        for n in args.tokens:
            shape = shape_of(n, mini.config.data.max_msa_rows, args.steps)
            batch = synthetic_batch(StepShape(shape.n_tokens, shape.n_atoms, shape.n_msa, diffusion_batch=1))
            model.set_chunk_size(shape.chunk_size)
            w0, c0 = time.perf_counter(), time.process_time()
            with torch.no_grad():
                model.sample(batch, n_cycles=args.cycles, n_samples=5, n_steps=args.steps)
            print(f"| | {n} / {shape.n_atoms} / {shape.n_msa} | {shape.chunk_size} | {args.cycles} | {args.steps} | "
                  f"{time.perf_counter() - w0:.1f} | {time.process_time() - c0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
