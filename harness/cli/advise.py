"""`harness advise --budget GPU_HOURS --gpu H100`: compute-optimal advice for a GPU budget from a study's
completed runs, or the reason there is none (the logic is ``analysis.advice``).

Convention: single commands expose a function named ``command``; ``harness/cli/__init__.py`` registers it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from harness.cli._common import console
from harness.errors import HarnessError


class AdviseError(HarnessError):
    """The runs behind the advice, or the GPU budget, are missing or malformed."""


def command(
    budget: float = typer.Option(..., "--budget", help="GPU-hours to spend on one training run"),
    gpu: str = typer.Option(..., "--gpu", help="GPU model: H100, H100-PCIE, H200, A100, L40S or MI300X"),
    mfu: float = typer.Option(0.35, "--mfu", help="model FLOPs utilisation: achieved / peak dense BF16 FLOP/s"),
    sweep: str | None = typer.Option("width_vs_depth", "--sweep",
                                     help="sweep YAML or name whose runs to read (all runs when empty)"),
    runs_dir: Path | None = typer.Option(None, "--runs-dir",
                                         help="run folders <runs_dir>/<sweep>/<run_key>/ (default runs)"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store to read instead"),
    runs_table: Path | None = typer.Option(None, "--runs-table",
                                           help="a completed-runs table (CSV, one row per run) instead of runs"),
    metric: str = typer.Option("val/loss", "--metric", help="the metric to minimise"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, help="bootstrap resamples"),
) -> None:
    """Turn GPU-hours into a compute-optimal configuration, with intervals, or say why the study cannot."""
    import pandas as pd

    from analysis.advice import GPU_PEAK_FLOPS, advise, gpu_flops
    from analysis.collect import ReportInputError, collect, tidy
    from analysis.completed import completed_runs

    try:
        flops = gpu_flops(budget, gpu, mfu)
        if runs_table is not None:
            try:
                table = pd.read_csv(runs_table)
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise ReportInputError(f"{runs_table}: cannot read the completed-runs table ({exc})") from None
        else:
            if sweep and sweep.endswith((".yaml", ".yml")):
                from harness.sweep.expand import load_sweep

                sweep = load_sweep(sweep).name
            if tracking_uri is None and runs_dir is None:
                runs_dir = Path("runs")
            table = completed_runs(tidy(collect(tracking_uri=tracking_uri, runs_dir=runs_dir, sweep=sweep or None)))
        peak = GPU_PEAK_FLOPS[gpu.upper()]
        basis = (f"Budget: {budget:g} {gpu.upper()} GPU-hours × {peak / 1e12:g} TFLOP/s peak dense BF16 × MFU "
                 f"{mfu:g} = {flops:.3g} FLOPs.")
        advice = advise(table, flops, basis=basis, metric=metric, n_bootstrap=bootstrap)
    except ReportInputError as exc:
        raise AdviseError(str(exc)) from None
    for line in advice.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)
