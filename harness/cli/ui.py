"""`harness ui`: the MLflow UI on the loopback address for the project's tracking store."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from harness.cli._common import console


def command(
    runs_dir: Annotated[Path, typer.Option(help="runs folder holding mlflow.db")] = Path("runs"),
    experiment: Annotated[
        str | None, typer.Option(help="experiment whose runs page to print; default: the latest with runs")
    ] = None,
    port: Annotated[int, typer.Option(help="port on the loopback address (0 = any free port)")] = 5000,
    host: Annotated[
        str | None, typer.Option(help="loopback address to serve on; default ::1 where this host has IPv6 "
                                      "(MLflow's Assistant panel stays closed there), else 127.0.0.1")
    ] = None,
    backend_uri: Annotated[
        str | None, typer.Option(help="tracking store; default sqlite:///<runs-dir>/mlflow.db")
    ] = None,
) -> None:
    """Start the MLflow UI for the runs folder's store and print the URL of the experiment's runs table
    (model-training mode, the study's metrics and parameters as columns)."""
    from mlflow.tracking import MlflowClient

    from harness.tracking.dashboard import ensure_dashboard, runs_page_url, ui_host
    from harness.tracking.server import start_server
    from harness.tracking.store import default_uri, get_or_create_experiment, latest_experiment

    uri = backend_uri or default_uri(runs_dir)
    experiment_id = get_or_create_experiment(uri, experiment) if experiment else latest_experiment(uri)
    client = MlflowClient(tracking_uri=uri)
    for found in client.search_experiments():  # those created before the dashboard tags existed
        fixed = ensure_dashboard(client, found.experiment_id)
        if fixed:
            console.print(f"experiment {found.name!r}: set {', '.join(fixed)}")
    server = start_server(Path(runs_dir) / "ui", host=host or ui_host(), port=port or None, backend_uri=uri)
    console.print(f"MLflow UI for {uri}")
    # Plain print so scripts can read the URL from stdout.
    typer.echo(runs_page_url(server.url, experiment_id))
    # SIGTERM (kill, SLURM, test teardown) must stop the server too: it runs in its own session.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server.process.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
