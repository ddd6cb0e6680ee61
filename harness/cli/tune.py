"""`harness tune FILE`: an Optuna study over a YAML search space; trials are runs nested under the study's
MLflow run; the best trial is printed and saved."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    file: Path = typer.Argument(..., help="tune YAML (search space, metric, trials, workers)"),
    executor: str | None = typer.Option(None, "--executor", "-e",
                                        help="local | slurm (default: the file's; auto = SLURM if sbatch answers)"),
) -> None:
    """Run an Optuna study over a search space declared in YAML, trials tracked in MLflow."""
    from harness.cli._common import console
    from harness.sweep.service import exit_on_sigterm
    from harness.tune.study import run_tune

    exit_on_sigterm()
    run_tune(file, executor=executor, log=console.print)
