"""Training step time and peak memory of the miniature presets on CPU, and the cost of tracking.

Each configuration trains for ``--steps`` optimizer steps on the bundled starter set through the real
``train_run`` (Lightning loop, EMA, checkpoints, guard), one thread, validation off. Reported per preset:
median step time (from the logged iter/s), peak resident memory of the run's own process (each run is a fresh
process), and the wall time of the whole run including the validation at initialisation. Logging
overhead: the same base run with MLflow tracking on (a sqlite store, every step logged) versus off.

    python benchmarks/bench_training.py --steps 60 --crop 64 --out bench_training.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.config import RunConfig
from harness.tracking import names
from harness.train.run import train_run

PRESETS = ("base", "medium", "large", "deep_pairformer", "deep_structure")


def run_once(preset: str, root: Path, *, steps: int, crop: int, tracking: bool, log_every: int) -> dict:
    config = RunConfig.model_validate({
        "name": f"bench-{preset}", "runs_dir": str(root / "runs"),
        "model": {"preset": preset, "miniature": True},
        "data": {"crop_size": crop, "max_msa_rows": 16, "val_max_tokens": 32},
        "train": {"max_steps": steps, "warmup_steps": 10, "diffusion_batch": 8, "max_cycles": 1,
                  "val_every": 10 * steps, "val_batches": 1, "checkpoint_every": steps, "log_every": log_every,
                  "threads": 1},
        "tracking": {"enabled": tracking},
    })
    t0 = time.perf_counter()
    state = train_run(config, root / f"{preset}-{tracking}-{log_every}")
    wall = time.perf_counter() - t0
    folder = root / f"{preset}-{tracking}-{log_every}" / names.RUN_METRICS_FILE
    rates = [float(line.split(",")[2]) for line in folder.read_text().splitlines()[1:]
             if line.split(",")[1] == names.ITER_PER_S]
    return {
        "preset": preset, "tracking": tracking, "log_every": log_every, "steps": steps, "crop": crop,
        "step_s": 1.0 / statistics.median(rates[1:] or rates),
        "peak_mb": state["last_metrics"][names.PEAK_MEMORY_MB],
        "params": int(state["params"][names.PARAM_PARAMS_TOTAL]),
        "wall_s": wall,
    }


def isolated(preset: str, root: Path, **kw) -> dict:
    """One run in a fresh process, so peak RSS belongs to that configuration alone."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(run_once, (preset, root), kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            rows.append(isolated(preset, Path(tmp), steps=args.steps, crop=args.crop, tracking=True, log_every=10))
        for tracking, log_every in ((False, 1), (True, 1)):
            rows.append(isolated("base", Path(tmp), steps=args.steps, crop=args.crop, tracking=tracking,
                                 log_every=log_every))
    table = Table(title=f"miniature training on CPU, crop {args.crop} tokens, {args.steps} steps, 1 thread")
    for col in ("preset", "params", "tracking", "log every", "step ms", "peak MB", "run wall s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["preset"], f"{r['params'] / 1e3:.0f}k", "mlflow" if r["tracking"] else "off",
                      str(r["log_every"]), f"{1e3 * r['step_s']:.0f}", f"{r['peak_mb']:.0f}", f"{r['wall_s']:.1f}")
    Console().print(table)
    off, on = rows[-2], rows[-1]
    print(f"logging overhead (MLflow every step vs off): {1e3 * (on['step_s'] - off['step_s']):+.1f} ms/step, "
          f"run wall {on['wall_s'] - off['wall_s']:+.1f} s")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
