"""`harness eval`: FoldBench-style evaluation of predictions against reference structures.

Convention: single commands expose a function named ``command``; ``harness/cli/__init__.py`` registers it.
``app`` is the same command as a stand-alone typer app.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from harness.cli._common import console
from harness.errors import HarnessError


class EvalInputError(HarnessError):
    """The targets CSV, the predictions directory or an option is invalid."""


def command(
    targets: Path = typer.Option(..., "--targets", help="Targets CSV: task, entry_id, chain_ids[, ...]."),
    predictions: Path = typer.Option(
        ..., "--predictions", help="Predictions dir: {target_id}/*_sample_k.cif"
    ),
    references: Path | None = typer.Option(
        None,
        "--references",
        help="Folder with {entry_id}.cif[.gz]/.pdb when the CSV has no reference column.",
    ),
    select: str = typer.Option("top1", "--select", help="top1 (highest ranking score) or best (oracle)."),
    strict_chains: bool = typer.Option(
        False, "--strict-chains", help="Map chains by id only (renamed chains fail) instead of by sequence."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: PREDICTIONS/eval)."),
) -> None:
    """Score predictions against references (lDDT, DockQ, ligand RMSD) into FoldBench-style tables."""
    from analysis.eval import SELECTIONS, TargetsFileError, evaluate, load_targets, summarize

    if select not in SELECTIONS:
        raise EvalInputError(f"--select {select!r}: expected one of {', '.join(SELECTIONS)}")
    if not predictions.is_dir():
        raise EvalInputError(f"--predictions {predictions}: not a directory")
    if references is not None and not references.is_dir():
        raise EvalInputError(f"--references {references}: not a directory")
    try:
        target_list = load_targets(targets, references)
    except TargetsFileError as err:
        raise EvalInputError(str(err)) from err
    raw = evaluate(target_list, predictions, select=select, strict=strict_chains)
    summary = summarize(raw)
    out = out or predictions / "eval"
    out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(out / "raw.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    _print_summary(summary, select)
    for _, row in raw[raw["status"] != "ok"].iterrows():
        console.print(f"[yellow]{row['status']}[/yellow] {row['target_id']}: {row['error']}", highlight=False)
    console.print(f"raw table: {out / 'raw.csv'}\nsummary:   {out / 'summary.csv'}", highlight=False)


def _fmt(value: float, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def _print_summary(summary, select: str) -> None:
    table = Table(title=f"FoldBench-style summary (selection: {select}; failures count as failures)")
    for name in ("task", "targets", "ok", "failed", "missing", "metric", "value", "evaluated only"):
        table.add_column(name)
    for name in ("mean iRMSD", "mean LRMSD", "mean lig. RMSD", "mean lDDT-PLI"):
        table.add_column(name)
    for _, row in summary.iterrows():
        percent = row["metric"] == "success_rate"
        table.add_row(
            row["task"],
            str(row["n_targets"]),
            str(row["n_evaluated"]),
            str(row["n_failed"]),
            str(row["n_missing"]),
            row["metric"],
            _fmt(row["value"], percent),
            _fmt(row["value_evaluated_only"], percent),
            _fmt(row["mean_irmsd"]),
            _fmt(row["mean_lrmsd"]),
            _fmt(row["mean_ligand_rmsd"]),
            _fmt(row["mean_lddt_pli"]),
        )
    console.print(table)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("eval")(command)
