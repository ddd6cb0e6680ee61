"""`harness sweep FILE`: expand a sweep YAML into runs and dispatch them (local or SLURM), resuming unfinished
runs and skipping finished ones; `--dry-run` prints the plan, `--cancel` cancels the sweep's jobs."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli._common import console, err_console, parse_sets


def command(
    file: Path = typer.Argument(..., help="sweep YAML, e.g. sweeps/width_vs_depth.yaml"),
    profile: str | None = typer.Option(None, "--profile", "-p",
                                       help="a profile of the sweep YAML (e.g. paper, mini, long)"),
    executor: str | None = typer.Option(
        None, "--executor", "-e", help="local | slurm (default: the sweep's; auto = SLURM if sbatch answers)"),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="print the runs, their sizes and placement; start nothing"),
    cancel: bool = typer.Option(False, "--cancel", help="cancel this sweep's queued and running jobs"),
    parallelism: int | None = typer.Option(None, "--parallelism", min=1, help="runs at once"),
    set_: list[str] = typer.Option(None, "--set", help="KEY=VALUE override for every run (repeatable)"),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="seconds between status checks"),
    gpu_memory: float | None = typer.Option(
        None, "--gpu-memory", min=1.0, help="one GPU's memory in GB (default: the SLURM profile's gpu_memory_gb); "
        "runs whose traced training step needs more than 90 % of it are marked and refused"),
    force: bool = typer.Option(False, "--force", help="submit runs that do not fit the GPU memory anyway"),
    lr_source: str | None = typer.Option(
        None, "--lr-source", help="a study's learning rates: scan (chosen by a scan per configuration) or config "
        "(the runs' own train.lr, e.g. the paper's hand-set rates); default: the study design's"),
) -> None:
    """Expand a sweep YAML into runs and dispatch them (local or SLURM), resuming unfinished runs."""
    from harness.sweep.service import (
        cancel_sweep,
        check_memory_fit,
        dry_run_table,
        exit_on_sigterm,
        prepare,
        run_prepared,
    )

    if lr_source not in (None, "scan", "config"):
        err_console.print(f"--lr-source: expected scan or config, got {lr_source!r}")
        raise typer.Exit(2)
    prepared = prepare(file, profile=profile, executor=executor, parallelism=parallelism,
                       extra=parse_sets(set_), lr_source=lr_source, gpu_memory_gb=gpu_memory)
    if cancel:
        n = cancel_sweep(prepared.specs)
        console.print(f"cancelled {n} job(s) of sweep {prepared.sweep.name}")
        return
    if dry_run:
        console.print(dry_run_table(prepared))
        return
    if not force:
        check_memory_fit(prepared)  # before anything is submitted
    exit_on_sigterm()
    outcome = run_prepared(prepared, poll_s=poll, console=console)
    console.print(f"sweep {prepared.sweep.name}: {len(outcome.finished)} finished, {len(outcome.skipped)} "
                  f"already done, {len(outcome.failed)} failed, {outcome.submitted} job(s) submitted")
    if outcome.failed:
        for key, error in outcome.failed.items():
            err_console.print(f"[bold red]run {key} failed:[/bold red] {error}", highlight=False)
        raise typer.Exit(1)
