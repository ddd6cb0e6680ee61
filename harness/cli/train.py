"""`harness train CONFIG`: train one configuration; re-running the same command resumes it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli._common import console, parse_sets


def command(
    config: Annotated[Path, typer.Argument(help="run config YAML (see `harness config show`)")],
    run_dir: Annotated[Path | None, typer.Option(help="run folder; default <runs_dir>/<name>-<config hash>")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a key: --set train.lr=1e-3")] = None,
) -> None:
    """Train one SeedFold configuration from a run YAML, resuming from its last checkpoint."""
    from harness.config import load_run_config
    from harness.recipe import resolve
    from harness.train.run import train_run

    cfg = load_run_config(config, parse_sets(set_))
    resolve(cfg, str(config))  # a config that derives nothing workable is refused here, naming its file
    console.print(f"training {cfg.name} (config {cfg.config_hash()}), tracking {cfg.tracking_uri()}")
    state = train_run(cfg, run_dir)
    console.print(f"run folder: {run_dir or cfg.runs_dir / f'{cfg.name}-{cfg.config_hash()}'}; "
                  f"status {state.get('status')}, step {state.get('step')}")
