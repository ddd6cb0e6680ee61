"""Time of the scaling-law fits behind `harness report`, with OpenBLAS's default threads and with one.

    python benchmarks/bench_report.py [--bootstrap 40] [--repeats 3]

Prints CPU (user+sys) and wall seconds of one L(C) fit (12 points, bootstrap resamples) and one Chinchilla fit
(24 points). ``analysis.fits`` runs every fit with one BLAS thread; ``__wrapped__`` is the fit without that.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from analysis.fits import fit_chinchilla, fit_power_law


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    t_wall, t_cpu = time.perf_counter(), os.times()
    fn(*args, **kwargs)
    cpu = os.times()
    return time.perf_counter() - t_wall, (cpu.user - t_cpu.user) + (cpu.system - t_cpu.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = np.geomspace(1e9, 1e11, 12)
    y = (0.5 + 2e3 * x**-0.3) * np.exp(rng.normal(0, 0.005, 12))
    n, d = np.repeat([1e5, 2e5, 3e5], 8), np.tile(np.geomspace(10, 400, 8), 3)
    yy = (0.3 + 50 * n**-0.35 + 20 * d**-0.4) * np.exp(rng.normal(0, 0.005, 24))
    cases = {"L(C), 12 points": (fit_power_law, (x, y), args.bootstrap),
             "L(N, D), 24 points": (fit_chinchilla, (n, d, yy), max(20, args.bootstrap // 2))}
    print(f"| fit | bootstrap | BLAS threads | wall s (median of {args.repeats}) | CPU s (user+sys) |")
    print("|---|---|---|---|---|")
    for name, (fit, data, n_boot) in cases.items():
        for threads, label in ((None, "default"), (1, "1")):
            runs = []
            for _ in range(args.repeats):
                with threadpool_limits(limits=threads, user_api="blas"):
                    runs.append(timed(fit.__wrapped__, *data, n_bootstrap=n_boot))
            wall, cpu = np.median(np.array(runs), axis=0)
            print(f"| {name} | {n_boot} | {label} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
