"""`harness status [SWEEP]`: each run's state, step, last metrics, job id and log path."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli._common import console
from harness.errors import ConfigError


def command(
    sweep: str | None = typer.Argument(
        None, help="a sweep YAML, a sweep folder (runs/<name>) or a sweep name; none: every sweep under --runs-dir"),
    profile: str | None = typer.Option(None, "--profile", "-p", help="profile, when SWEEP is a YAML file"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where sweeps write their run folders"),
) -> None:
    """Show each run of a sweep: state, step, last metrics, SLURM job id and log path."""
    from harness.sweep.expand import load_and_expand
    from harness.sweep.run_folders import specs_from_folder
    from harness.sweep.service import progress_view

    if sweep is None:
        folders = sorted(p.parent for p in runs_dir.glob("*/sweep.json"))
        if not folders:
            raise ConfigError(str(runs_dir), ["no sweeps here (no <sweep>/sweep.json); pass --runs-dir"])
    elif sweep.endswith((".yaml", ".yml")):
        name, specs = load_and_expand(sweep, profile)
        console.print(progress_view(specs, f"sweep {name.name}"))
        return
    else:
        folder = Path(sweep) if Path(sweep).is_dir() else runs_dir / sweep
        folders = [folder]
    for folder in folders:
        specs = specs_from_folder(folder)
        if not specs:
            console.print(f"sweep {folder.name}: no runs submitted yet ({folder})")
            continue
        console.print(progress_view(specs, f"sweep {folder.name} ({folder})"))
