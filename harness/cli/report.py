"""`harness report [SWEEP]`: scaling plots, power-law fits and tables of a sweep's recorded runs (issue #9).

Convention: single commands expose a function named ``command``; ``harness/cli/__init__.py`` registers it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from harness.cli._common import console
from harness.errors import HarnessError


class ReportError(HarnessError):
    """The runs, benchmark or evaluation files behind a report are missing or malformed."""


def command(
    sweep: str | None = typer.Argument(
        None, help="sweep YAML or sweep name (runs tagged sweep=SWEEP); all runs when omitted"),
    plot: list[str] = typer.Option(["scaling"], "--plot", "-p",
                                   help="scaling | attention | stability | kernels (repeatable)"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri",
                                            help="MLflow store to read (sqlite:///ABS/mlflow.db or http://host:port)"),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help="run folders <runs_dir>/<sweep>/<run_key>/"),
    experiment: str | None = typer.Option(None, "--experiment", help="restrict to this MLflow experiment"),
    out: Path | None = typer.Option(None, "--out", help="output folder (default reports/<sweep>)"),
    metric: list[str] = typer.Option(["val/lddt", "val/loss"], "--metric", help="metrics to plot and fit"),
    benchmarks: list[Path] = typer.Option([], "--benchmarks", help="kernel benchmark CSV(s) for --plot kernels"),
    eval_summary: Path | None = typer.Option(None, "--eval-summary", help="`harness eval` summary CSV"),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0,
                                  help="bootstrap resamples per fit (predictions use at least 1000)"),
    log_mlflow: bool = typer.Option(False, "--log-mlflow/--no-log-mlflow",
                                    help="log the report as artifacts of a report run in --tracking-uri, "
                                         "in the experiment of the report's runs"),
    predict_budget: list[float] = typer.Option(
        [], "--predict-budget", help="pre-register what the laws predict at this FLOPs budget (repeatable)"),
    predict_config: str | None = typer.Option(
        None, "--predict-config", help="configuration to predict (L(N, D)); omitted: the compute-optimal one (L(C))"),
    predictions_out: Path | None = typer.Option(
        None, "--predictions-out", help="where --predict-budget writes its file (default OUT/predictions.json)"),
    check_predictions: list[Path] = typer.Option(
        [], "--check-predictions", help="a predictions file to compare with the runs that now exist (repeatable)"),
) -> None:
    """Turn a sweep's recorded runs into scaling plots, power-law fits and tables (HTML + Markdown report)."""
    from analysis.collect import (
        ReportInputError,
        collect,
        read_structure_metrics,
        repeated_step_notes,
        run_table,
        tidy,
    )
    from analysis.report import build_report, log_report

    if sweep and sweep.endswith((".yaml", ".yml")):
        from harness.sweep.expand import load_sweep

        sweep = load_sweep(sweep).name  # validates the file and names the sweep its runs are tagged with
    name = sweep or "all"
    out_dir = out or Path("reports") / name
    needs_runs = any(p != "kernels" for p in plot)
    if needs_runs and tracking_uri is None and runs_dir is None:
        runs_dir = Path("runs")
    try:
        frame, notes, records, structures, params = None, [], [], None, None
        if tracking_uri is not None or runs_dir is not None:
            records = collect(tracking_uri=tracking_uri, runs_dir=runs_dir, sweep=sweep, experiment=experiment)
            frame, notes = tidy(records), repeated_step_notes(records)
            structures, params = read_structure_metrics(records), run_table(records)
        if (predict_config is not None or predictions_out is not None) and not predict_budget:
            raise ReportInputError("--predict-config and --predictions-out need --predict-budget FLOPS")
        if predict_budget or check_predictions:  # before the report: a file for runs not yet run is an error
            from analysis.predictions import registered

            for line in registered(frame, out_dir, sweep=name, budgets=predict_budget, config=predict_config,
                                   out=predictions_out, checks=check_predictions, n_bootstrap=max(bootstrap, 1000)):
                console.print(escape(line), highlight=False, soft_wrap=True)
        if log_mlflow:
            if tracking_uri is None:
                raise ReportInputError("--log-mlflow needs --tracking-uri")
            experiment_id, where = report_experiment(tracking_uri, records, experiment)
        report = build_report(frame, out_dir, name, plots=tuple(plot), metrics=tuple(metric),
                              benchmarks=tuple(benchmarks), eval_summary=eval_summary, n_bootstrap=bootstrap,
                              notes=tuple(notes), structures=structures, params=params)
        if log_mlflow:
            run_id = log_report(report, tracking_uri, experiment_id=experiment_id)
            console.print(f"logged report run {run_id} to {tracking_uri}, {where}")
    except ReportInputError as exc:
        raise ReportError(str(exc)) from None
    # Lines carry intervals such as "[n/a]" and "[0.1, 0.2]": escaped, or rich would read them as markup.
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    for line in report.headline + report.trajectory:
        console.print(escape(line), highlight=False)
    console.print(f"report: {report.html}  ({len(report.figures)} figures, {len(report.tables)} tables)")


def report_experiment(tracking_uri: str, records: list, experiment: str | None) -> tuple[str, str]:
    """Where the report run goes, and why: ``--experiment`` when given, else the one experiment holding the
    report's runs (so the UI lists the report beside them), else seedfold-scaling."""
    from harness.tracking.store import experiments_of_runs, get_or_create_experiment

    if experiment is not None:
        return get_or_create_experiment(tracking_uri, experiment), f"experiment {experiment!r}"
    ours = [r.run_id for r in records if r.source.startswith(f"{tracking_uri}#")]
    held = experiments_of_runs(tracking_uri, ours)
    if len(held) == 1:
        (experiment_id, ids), = held.items()
        return experiment_id, f"experiment id {experiment_id}, beside the report's {len(ids)} runs"
    why = f"the report's runs span experiment ids {', '.join(sorted(held))}" if held else "no MLflow run read"
    return get_or_create_experiment(tracking_uri, "seedfold-scaling"), f"experiment 'seedfold-scaling' ({why})"
