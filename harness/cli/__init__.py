"""The `harness` command line: one typer app, each command in its own module."""

from __future__ import annotations

import sys

import typer

from harness.allocator import tune_allocator
from harness.cli import advise, config, data, eval, predict, report, status, sweep, tracking, train, tune, ui
from harness.cli._common import err_console
from harness.errors import HarnessError

app = typer.Typer(
    name="harness",
    help="Scaling-law experiments for SeedFold: sweeps, training, tuning, evaluation and reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("sweep")(sweep.command)
app.command("status")(status.command)
app.command("train")(train.command)
app.command("tune")(tune.command)
app.command("report")(report.command)
app.command("advise")(advise.command)
app.command("eval")(eval.command)
app.command("predict")(predict.command)
app.command("ui")(ui.command)
app.add_typer(data.app, name="data")
app.add_typer(config.app, name="config")
app.add_typer(tracking.app, name="tracking")


def main() -> None:
    """Entry point: user-caused errors print as one line per problem and exit non-zero, no traceback."""
    tune_allocator()  # before the first large tensor; see harness/allocator.py
    try:
        app()
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
