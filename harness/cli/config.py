"""`harness config validate|show`: check a run YAML and print it resolved, defaults filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from harness.cli._common import console

app = typer.Typer(help="Validate run configs and print them resolved (preset expanded, defaults filled in).",
                  no_args_is_help=True)

ConfigPath = Annotated[Path, typer.Argument(help="run config YAML", show_default=False)]


@app.command("validate")
def validate(path: ConfigPath) -> None:
    """Check a run config: unknown keys, wrong types, out-of-range values and missing files are errors."""
    from harness.config import load_run_config

    config = load_run_config(path)
    console.print(f"[green]ok[/green] {path}: run {config.name!r}, config hash {config.config_hash()}")


@app.command("show")
def show(path: ConfigPath) -> None:
    """Print the resolved config as YAML (the preset expanded, every default filled in)."""
    from harness.config import load_run_config

    config = load_run_config(path)
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), nl=False)
