"""`harness ui`: the MLflow UI on 127.0.0.1 for the project's tracking store."""

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
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 = any free port)")] = 5000,
    backend_uri: Annotated[
        str | None, typer.Option(help="tracking store; default sqlite:///<runs-dir>/mlflow.db")
    ] = None,
) -> None:
    """Start the MLflow UI on 127.0.0.1 for the runs folder's store and print the URL of the runs page."""
    from harness.tracking.server import start_server
    from harness.tracking.store import default_uri, get_or_create_experiment, latest_experiment, runs_page_url

    uri = backend_uri or default_uri(runs_dir)
    experiment_id = get_or_create_experiment(uri, experiment) if experiment else latest_experiment(uri)
    server = start_server(Path(runs_dir) / "ui", port=port or None, backend_uri=uri)
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
