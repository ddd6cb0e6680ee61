"""`harness data ...`: build the starter set, prepare caches, print statistics. (placeholder: issue #3)

Convention: command groups expose a typer app named ``app``; ``harness/cli/__init__.py`` registers it.
"""

import typer

from harness.cli._common import not_available

app = typer.Typer(help="Structures in, features out: build the starter set, prepare caches, print statistics.",
                  no_args_is_help=True)


@app.command("build-starter")
def build_starter() -> None:
    """Rebuild the bundled starter set of real PDB entries from pinned registry packages."""
    not_available("data build-starter", 3)


@app.command("prepare")
def prepare() -> None:
    """Turn a folder of structures (+ MSAs) into a preprocessed feature cache."""
    not_available("data prepare", 3)


@app.command("stats")
def stats() -> None:
    """Print counts and length distributions of a structure folder or cache."""
    not_available("data stats", 3)
