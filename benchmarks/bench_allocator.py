"""What the in-program malloc tuning (``harness/allocator.py``) changes for a user who types ``harness predict``
without the ``MALLOC_*`` variables of scripts/quickstart.sh: wall, user and system time and minor page faults
of the real command, ``SEEDFOLD_MALLOC=off`` (glibc defaults) against the default (tuned), interleaved.

A checkpoint of the chosen miniature is trained first (a few steps: the weights do not matter for timing),
then ``harness predict <ckpt> 1ake --samples S --steps T`` runs in fresh processes, alternating the two modes.

    python benchmarks/bench_allocator.py --preset large --samples 2 --steps 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRUCTURE = ROOT / "harness" / "data" / "starter" / "structures" / "1ake.cif.gz"


def train_checkpoint(preset: str, root: Path) -> Path:
    from harness.config import RunConfig
    from harness.train.run import train_run

    config = RunConfig.model_validate({
        "name": f"alloc-{preset}", "runs_dir": str(root), "model": {"preset": preset, "miniature": True},
        "data": {"crop_size": 32, "max_msa_rows": 8, "val_max_tokens": 32},
        "train": {"max_steps": 2, "warmup_steps": 1, "diffusion_batch": 2, "max_cycles": 1, "val_every": 1000,
                  "val_batches": 1, "checkpoint_every": 2, "threads": 1, "accelerator": "cpu"},
        "tracking": {"enabled": False},
    })  # fmt: skip
    train_run(config, root / "run")
    return root / "run"


def predict_once(run: Path, out: Path, mode: str, samples: int, steps: int, threads: int) -> dict:
    """One `harness predict` in a fresh process; its own rusage via os.wait4."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env |= {"SEEDFOLD_MALLOC": mode, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "harness", "predict", str(run), str(STRUCTURE), "--out", str(out),
           "--samples", str(samples), "--steps", str(steps)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"harness predict failed ({status}): {proc.stderr.read().decode()[-2000:]}")
    return {"mode": mode, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "minor_faults": usage.ru_minflt}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="large")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = train_checkpoint(args.preset, Path(tmp))
        for rep in range(args.repeats):
            for mode in ("off", "auto") if rep % 2 == 0 else ("auto", "off"):
                rows.append(predict_once(run, Path(tmp) / f"pred-{rep}-{mode}", mode, args.samples, args.steps,
                                         args.threads) | {"rep": rep})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nharness predict 1ake, {args.preset} miniature, {args.samples} samples × {args.steps} steps, "
          f"{args.threads} threads, {args.repeats} interleaved repeats (median [min–max])\n")
    print("| SEEDFOLD_MALLOC | wall s | user s | sys s | minor page faults |")
    print("|---|---|---|---|---|")
    for mode in ("off", "auto"):
        got = [r for r in rows if r["mode"] == mode]
        cells = []
        for key, fmt in (("wall_s", ".1f"), ("user_s", ".1f"), ("sys_s", ".1f"), ("minor_faults", ".3g")):
            vals = [r[key] for r in got]
            cells.append(f"{statistics.median(vals):{fmt}} [{min(vals):{fmt}}–{max(vals):{fmt}}]")
        label = "off (glibc defaults)" if mode == "off" else "auto (tuned)"
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
