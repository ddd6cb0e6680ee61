"""`harness tracking`: the sweep's detached MLflow server (serve, stop) and backfilling run folders into MLflow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from harness.cli._common import console

app = typer.Typer(help="The tracking server a sweep's jobs log to, and backfilling runs into MLflow.",
                  no_args_is_help=True)


@app.command("serve")
def serve(
    runs_dir: Annotated[Path, typer.Option(help="runs folder holding mlflow.db")] = Path("runs"),
    host: Annotated[str, typer.Option(help="address to bind (0.0.0.0: reachable from other nodes)")] = "127.0.0.1",
    advertise_host: Annotated[str | None, typer.Option(help="address jobs use; default: see TrackingConfig")] = None,
    port: Annotated[int | None, typer.Option(help="default: derived from the store's path")] = None,
) -> None:
    """Start (or find) the detached MLflow server for the runs folder's store; print its URL (and, bound beyond
    loopback, where its credentials are: never the credentials themselves)."""
    from harness.dispatch.tracking import stable_port
    from harness.tracking.auth import CLIENT_VARS, CREDENTIALS_FILE, auth_dir, is_loopback
    from harness.tracking.server import serve_detached
    from harness.tracking.store import default_uri

    uri = default_uri(runs_dir)
    typer.echo(serve_detached(runs_dir, uri, port=port or stable_port(uri), host=host,
                              advertise_host=advertise_host))
    if not is_loopback(host):
        console.print(f"credentials (0600): {auth_dir(runs_dir) / CREDENTIALS_FILE}; MLflow clients read them from "
                      f"{' and '.join(CLIENT_VARS)} (`harness sweep` on this runs folder sets them itself)",
                      highlight=False, soft_wrap=True)


@app.command("stop")
def stop(runs_dir: Annotated[Path, typer.Option(help="runs folder")] = Path("runs")) -> None:
    """Stop the runs folder's detached MLflow server."""
    from harness.tracking.server import stop_detached

    console.print("stopped" if stop_detached(runs_dir) else f"no server running for {runs_dir}")


@app.command("sync")
def sync(
    run_dirs: Annotated[list[Path], typer.Argument(help="run folders (or folders holding them)")],
    tracking_uri: Annotated[str | None, typer.Option(help="default: where each run lives (state.json)")] = None,
) -> None:
    """Send what run folders recorded but MLflow has not received (after an outage); creates missing runs.
    A folder whose trainer is alive is refused (its trainer uploads it; ``harness.tracking.trainer_lock``): the
    others are synced, then the refusals are listed and the exit status is 2."""
    import yaml

    from harness.config import load_record
    from harness.errors import HarnessError
    from harness.tracking.auth import CLIENT_VARS, use_credentials
    from harness.tracking.run_folder import RunFolder
    from harness.tracking.server import read_detached
    from harness.tracking.sync import TrackingSync
    from harness.tracking.trainer_lock import FolderBusy, folder_lock
    from harness.train.run import run_identity

    folders = [RunFolder(p.parent) for d in run_dirs for p in sorted(Path(d).rglob("state.json"))]
    if not folders:
        raise HarnessError(f"no run folder (state.json) under {', '.join(map(str, run_dirs))}")
    busy: list[str] = []
    for folder in folders:
        try:
            with folder_lock(folder, owner="harness tracking sync", wait=False):
                state = folder.read_state()
                config = load_record(yaml.safe_load(folder.config_path.read_text()), str(folder.config_path))
                uri = tracking_uri or state.get("tracking_uri") or config.tracking_uri()
                server = read_detached(config.runs_dir) if config.runs_dir.is_dir() else None
                if server and server.get("authenticated") and server["url"] == uri and not all(
                        v in os.environ for v in CLIENT_VARS):
                    use_credentials(config.runs_dir)  # the runs folder's own server wants its credentials
                tags = state.get("tags", {})
                syncer = TrackingSync(folder, uri, experiment_name=config.tracking.experiment,
                                      identity=lambda c=config, f=folder, t=tags: (t, run_identity(c, f, t)[1]))
                sent = syncer.sync_once()
        except FolderBusy as exc:
            busy.append(str(exc))
            continue
        run_id = folder.read_state()["mlflow_run_id"]
        console.print(f"{folder.path}: sent {sent} metric points to {uri} (run {run_id})")
    if busy:
        raise HarnessError("not synced, a live process holds the run folder:\n" + "\n".join(busy))
