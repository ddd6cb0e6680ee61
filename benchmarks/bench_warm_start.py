"""CPU seconds per local sweep run with and without the warm start (harness.dispatch.warm).

Runs the same tiny sweep of the real model twice through ``harness sweep`` (local executor, 2 runs at a time,
the mini profile's recipe, ``--steps`` optimizer steps per run): once with every run in a fresh interpreter, once
forked from the zygote. CPU seconds are the sweep command's and all its descendants' (getrusage of reaped
children: the driver, submitit's controllers, the clients, the zygote and the jobs it forked).

    PYTHONPATH=$PWD python benchmarks/bench_warm_start.py --runs-dir /tmp/warm_bench --steps 2

``--startup N`` instead measures the start-up alone, N times each way: a job that imports what a training job
imports (``harness.dispatch.warm.TRAIN_PRELOAD``) and reports its own CPU seconds (``os.times``: a forked child's
count starts at zero), run cold (``python -u -m``) and through a zygote.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table


def sweep_file(folder: Path, steps: int, seeds: list[int]) -> Path:
    profile = {"extends": "mini", "overrides": {"train.max_steps": steps}}
    doc = {
        "name": "warm_bench",
        "base": {"model": {"preset": "base"}, "train": {"lr": 7.5e-3}},
        "runs": {"base": {}, "medium": {"model.preset": "medium"}},
        "seeds": seeds,
        "profiles": {
            mode: profile | {"overrides": profile["overrides"] | {"runs_dir": str(folder / mode)},
                             "executor": {"kind": "local", "parallelism": 2, "warm_start": mode == "warm"}}
            for mode in ("cold", "warm")
        },
    }
    path = folder / "warm_bench.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(path: Path, mode: str) -> tuple[float, float]:
    """(wall s, CPU s) of one sweep invocation."""
    cpu0, t0 = children_cpu(), time.monotonic()
    subprocess.run([sys.executable, "-m", "harness", "sweep", str(path), "--profile", mode, "--executor", "local",
                    "--poll", "0.5"], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0, children_cpu() - cpu0


STARTUP_JOB = """
import importlib, json, os
from harness.dispatch.warm import BASE_PRELOAD, TRAIN_PRELOAD
for name in BASE_PRELOAD + TRAIN_PRELOAD:
    importlib.import_module(name)
t = os.times()
print(json.dumps(t.user + t.system))
"""


def startup(folder: Path, n: int) -> Table:
    """CPU s of a job's start-up, cold and warm (mean and range over ``n``)."""
    import json
    import shlex
    import statistics

    from harness.dispatch.warm import BASE_PRELOAD, THREADLESS_ENV, TRAIN_PRELOAD, WarmStart

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "startup_job.py").write_text(STARTUP_JOB)
    warm = WarmStart(folder / "zygote.log", BASE_PRELOAD + TRAIN_PRELOAD)
    assert warm.start(), warm.refused
    commands = {"cold (fresh python)": [sys.executable], "warm (zygote)": shlex.split(warm.python)}
    table = Table(title=f"start-up of one job: imports of a training job ({n} each)")
    for col in ("start", "CPU s per job (mean)", "min", "max"):
        table.add_column(col, justify="right")
    for label, python in commands.items():
        cpu = [json.loads(subprocess.run([*python, "-u", "-m", "startup_job"], cwd=folder, check=True,
                                         capture_output=True, text=True, env=os.environ | THREADLESS_ENV
                                         ).stdout.splitlines()[-1]) for _ in range(n)]
        table.add_row(label, f"{statistics.mean(cpu):.2f}", f"{min(cpu):.2f}", f"{max(cpu):.2f}")
    warm.stop()
    table.caption = "the zygote pays the cold imports once per sweep invocation"
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True, help="a fresh folder for the runs")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2, help="seeds per configuration (2 configurations)")
    parser.add_argument("--order", default="cold,warm", help="modes in the order run")
    parser.add_argument("--startup", type=int, default=0, help="measure the start-up alone, this many times")
    args = parser.parse_args()
    if args.startup:
        Console().print(startup(args.runs_dir, args.startup))
        return
    path = sweep_file(args.runs_dir, args.steps, list(range(args.seeds)))
    runs = 2 * args.seeds
    table = Table(title=f"{runs} local runs of {args.steps} steps, 2 at a time (mini recipe)")
    for col in ("start", "wall s", "CPU s", "CPU s per run"):
        table.add_column(col, justify="right")
    for mode in args.order.split(","):
        wall, cpu = measure(path, mode)
        table.add_row("warm (zygote)" if mode == "warm" else "cold (fresh python)", f"{wall:.1f}", f"{cpu:.1f}",
                      f"{cpu / runs:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
