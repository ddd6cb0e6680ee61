"""Cost of the scaling-law engine (analysis.laws) and of the laws part of a report, and what the committed long
fixture gives.

    python benchmarks/bench_laws.py [--bootstrap 1000] [--repeats 3]

Prints, per law of a completed-runs table drawn from a known law (tests/analysis/law_tables.py: 6 configurations
× 6 FLOPs budgets + 1 step budget × 3 seeds), the wall and CPU (user + sys) seconds of the point fit and of the
point fit plus its bootstrap, per fit; then the whole laws section (3 laws with 2 backtests each, the optima,
both allocation rules, 2 loss → metric mappings; figures off) and `advise`; then the long fixture's verdicts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import laws  # noqa: E402
from analysis.advice import advise  # noqa: E402
from analysis.cells import cells_of  # noqa: E402
from analysis.collect import read_run_folders, tidy  # noqa: E402
from analysis.completed import completed_runs  # noqa: E402
from analysis.fits import LAW_C, scaling_fits  # noqa: E402
from analysis.laws_report import laws_section  # noqa: E402
from analysis.study_laws import POINTS, VARIABLES, target_cells  # noqa: E402
from tests.analysis.law_tables import completed_table  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "analysis" / "data" / "runs"


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeats`` calls."""
    runs = []
    for _ in range(repeats):
        t_wall, t_cpu = time.perf_counter(), time.process_time()  # process time: user + sys of this process
        fn()
        runs.append((time.perf_counter() - t_wall, time.process_time() - t_cpu))
    wall, cpu = np.median(np.array(runs), axis=0)
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; one BLAS thread\n")
    table = completed_table(step_budgets=(200_000,))
    with threadpool_limits(limits=1, user_api="blas"):
        cells = target_cells(cells_of(table, "val/loss", n_bootstrap=args.bootstrap))
        print("| law | points | point fit ms (wall / CPU) | + bootstrap s (wall / CPU) | per fit ms (CPU) |")
        print("|---|---|---|---|---|")
        for name, points in POINTS.items():
            data = points(cells)
            one = timed(lambda d=data, n=name: laws.fit(d.x, d.y, VARIABLES[n]), args.repeats)
            full = timed(lambda d=data, n=name: laws.fit(d.x, d.y, VARIABLES[n], replicates=d.replicates),
                         args.repeats)
            print(f"| {name} | {len(data.y)} | {1e3 * one[0]:.1f} / {1e3 * one[1]:.1f} | {full[0]:.2f} / "
                  f"{full[1]:.2f} | {1e3 * full[1] / (args.bootstrap + 1):.2f} |")
    section = timed(lambda: laws_section(table, n_bootstrap=args.bootstrap), 1)
    advice = timed(lambda: advise(table, 5e13, n_bootstrap=args.bootstrap), 1)
    print(f"\nlaws section ({args.bootstrap} resamples, no figures): {section[0]:.1f} s wall / {section[1]:.1f} s CPU")
    print(f"advise ({args.bootstrap} resamples): {advice[0]:.1f} s wall / {advice[1]:.1f} s CPU\n")

    frame = tidy(read_run_folders(FIXTURE, "width_vs_depth"))
    legacy = scaling_fits(frame, "val/loss", n_bootstrap=200)
    print(f"long fixture, today's L(C) on the curve frontier ({len(legacy.frontier)} points): "
          f"not fitted: {legacy.refused[LAW_C]}")
    for line in laws_section(completed_runs(frame), n_bootstrap=args.bootstrap).lines():
        print(f"long fixture: {line}")


if __name__ == "__main__":
    main()
