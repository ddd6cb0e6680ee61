"""`harness eval`: FoldBench-style evaluation of predictions against reference structures.

Convention: single commands expose a function named ``command``; ``harness/cli/__init__.py`` registers it.
``app`` is the same command as a stand-alone typer app.

Exit status: 0 when every target was scored, 1 when any target failed or had no prediction (the tables are
written either way and the count is printed), 2 for invalid input (bad targets file, folder or option).
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from harness.cli._common import console
from harness.errors import HarnessError

EXIT_TARGETS_FAILED = 1


class EvalInputError(HarnessError):
    """The targets CSV, the predictions directory or an option is invalid."""


def command(
    targets: Path = typer.Option(
        ..., "--targets", help="Targets CSV: the project's (task, entry_id, chain_ids[, ...]) or a FoldBench list."
    ),
    predictions: Path = typer.Option(
        ..., "--predictions", help="Predictions dir: one folder per target in a --layout predictors write."
    ),
    references: Path | None = typer.Option(
        None,
        "--references",
        help="Folder with {entry_id}.cif[.gz]/.pdb when the CSV has no reference column.",
    ),
    select: str = typer.Option("top1", "--select", help="top1 (highest ranking score) or best (oracle)."),
    chain_ids: str = typer.Option(
        "auto", "--chain-ids", help="label (label_asym_id), auth (author ids) or auto (label for FoldBench lists)."
    ),
    layout: str = typer.Option(
        "auto", "--layout", help="Prediction folders: auto, seedfold, alphafold3, boltz, protenix or chai1."
    ),
    lddt_scopes: list[str] = typer.Option(
        [], "--lddt", help="Extra lDDT columns: complex (all chains) and/or interface (repeat the option)."
    ),
    nonstandard: str = typer.Option(
        "parent", "--nonstandard", help="parent (map modified residues to their parent, as OpenStructure) or keep."
    ),
    convention: str | None = typer.Option(
        None, "--convention", help="Scoring convention: foldbench (default; OpenStructure 2.8 as FoldBench ran "
        "it: lDDT-PLI over reference contacts only) or ost-latest (newer OpenStructure: model-only contacts "
        "penalised too).",
    ),
    pli_model_contacts: bool | None = typer.Option(
        None, "--pli-model-contacts/--no-pli-model-contacts",
        help="lDDT-PLI also penalises model-only contacts: the same as --convention ost-latest / foldbench.",
    ),
    strict_chains: bool = typer.Option(
        False, "--strict-chains", help="Map chains by id only (renamed chains fail) instead of by sequence."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: PREDICTIONS/eval)."),
) -> None:
    """Score predictions against references (lDDT, DockQ, ligand RMSD) into FoldBench-style tables."""
    from analysis.conventions import CONVENTIONS
    from analysis.eval import SELECTIONS, EvalOptions, TargetsFileError, evaluate_all, load_targets, summarize

    if select not in SELECTIONS:
        raise EvalInputError(f"--select {select!r}: expected one of {', '.join(SELECTIONS)}")
    if chain_ids not in ("auto", "label", "auth"):
        raise EvalInputError(f"--chain-ids {chain_ids!r}: expected auto, label or auth")
    if not predictions.is_dir():
        raise EvalInputError(f"--predictions {predictions}: not a directory")
    if references is not None and not references.is_dir():
        raise EvalInputError(f"--references {references}: not a directory")
    try:
        options = EvalOptions(
            strict=strict_chains,
            nonstandard=nonstandard,
            lddt_scopes=tuple(dict.fromkeys(lddt_scopes)),
            convention=_convention(convention, pli_model_contacts),
            layout=layout,
        )
    except ValueError as err:
        raise EvalInputError(f"option: {err}") from err
    try:
        target_list = load_targets(targets, references, chain_ids=None if chain_ids == "auto" else chain_ids)
    except TargetsFileError as err:
        raise EvalInputError(str(err)) from err
    raw, samples = evaluate_all(target_list, predictions, select=select, options=options)
    summary = summarize(raw)
    summary["convention"] = options.convention
    out = out or predictions / "eval"
    out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(out / "raw.csv", index=False)
    samples.drop(columns=["primary"]).to_csv(out / "samples.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    _print_summary(summary, select)
    console.print(f"convention: {options.convention} ({CONVENTIONS[options.convention].description})",
                  highlight=False)
    for _, row in raw[raw["status"] != "ok"].iterrows():
        console.print(f"[yellow]{row['status']}[/yellow] {row['target_id']}: {row['error']}", highlight=False)
    unmapped = raw[raw["unmapped_interfaces"].fillna("").astype(str).str.len() > 0]
    for _, row in unmapped.iterrows():
        console.print(
            f"[yellow]interfaces[/yellow] {row['target_id']}: reference interface(s) {row['unmapped_interfaces']} "
            "have a chain that no prediction chain maps onto",
            highlight=False,
        )
    console.print(
        f"raw table (selected sample per target): {out / 'raw.csv'}\n"
        f"every sample:                            {out / 'samples.csv'}\n"
        f"summary:                                 {out / 'summary.csv'}",
        highlight=False,
    )
    n_bad = int((raw["status"] != "ok").sum())
    if n_bad:
        n_failed, n_missing = int((raw["status"] == "failed").sum()), int((raw["status"] == "missing").sum())
        console.print(
            f"[red]{n_bad} of {len(raw)} targets not scored[/red] ({n_failed} failed, {n_missing} missing)",
            highlight=False,
        )
        raise typer.Exit(EXIT_TARGETS_FAILED)


def _convention(name: str | None, model_contacts: bool | None) -> str:
    """The convention named by ``--convention`` and/or ``--[no-]pli-model-contacts`` (FoldBench's when neither);
    the two must agree."""
    from analysis.conventions import DEFAULT_CONVENTION, convention, convention_for_model_contacts

    if model_contacts is None:
        return name or DEFAULT_CONVENTION
    implied = convention_for_model_contacts(model_contacts).name
    if name is not None and convention(name).name != implied:
        flag = "--pli-model-contacts" if model_contacts else "--no-pli-model-contacts"
        raise EvalInputError(f"--convention {name} and {flag} disagree ({flag} is --convention {implied})")
    return implied


def _fmt(value: float, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    # FoldBench prints success rates in percent; the CSV keeps the fraction, shown beside it.
    return f"{100 * value:.2f}% ({value:.4f})" if percent else f"{value:.4f}"


def _print_summary(summary, select: str) -> None:
    table = Table(title=f"FoldBench-style summary (selection: {select}; failures count as failures)")
    columns = [("task", "task"), ("targets", "n_targets"), ("ok", "n_evaluated"), ("failed", "n_failed"),
               ("missing", "n_missing"), ("metric", "metric")]  # fmt: skip
    means = [("mean iRMSD", "mean_irmsd"), ("mean LRMSD", "mean_lrmsd"), ("mean lig. RMSD", "mean_ligand_rmsd"),
             ("mean lDDT-PLI", "mean_lddt_pli"), ("complex lDDT", "mean_lddt_complex"),
             ("interface lDDT", "mean_lddt_interface")]  # fmt: skip
    # Only the component columns some task has a value for.
    means = [(title, key) for title, key in means if summary[key].notna().any()]
    for title in [c[0] for c in columns] + ["value", "evaluated only"] + [m[0] for m in means]:
        table.add_column(title)
    for _, row in summary.iterrows():
        percent = row["metric"] == "success_rate"
        table.add_row(
            *[str(row[key]) for _, key in columns],
            _fmt(row["value"], percent),
            _fmt(row["value_evaluated_only"], percent),
            *[_fmt(row[key]) for _, key in means],
        )
    console.print(table)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("eval")(command)
