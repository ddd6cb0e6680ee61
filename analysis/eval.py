"""FoldBench-style evaluation: score each target's selected prediction and summarise per task.

Targets CSV (one row per target; header names are case-insensitive):

- ``task``: monomer, protein_protein, antibody_antigen, protein_peptide, protein_dna, protein_rna or
  protein_ligand.
- ``entry_id``: the reference entry (e.g. a PDB id); the reference file is ``reference`` (a path, relative to
  the CSV) when that column is given, else ``{references_dir}/{entry_id}.{cif,cif.gz,pdb,...}``.
- ``chain_ids``: reference author chain ids, separated by ``,`` ``;`` or spaces: one chain for a monomer, the
  two chains of the interface for interface tasks, the receptor chain(s) for protein_ligand.
- ``target_id`` (optional, default ``entry_id``): the folder name under the predictions directory.
- ``ligand`` (protein_ligand only): ``CCD``, ``CHAIN:CCD`` or ``CHAIN:CCD:RESNUM`` in the reference.

Predictions follow :func:`analysis.structure_io.prediction_paths`. Per target the top-1 sample by ranking
score counts (``select="best"``: the oracle, the sample with the best task metric).

Failed and missing predictions are **not dropped**: every target yields one raw row with ``status`` ok /
failed / missing and the error. In the summary they count as failures (success 0, lDDT 0) in ``value``;
``value_evaluated_only`` gives FoldBench's convention (failures dropped) next to it, with the counts.
"""

from __future__ import annotations

import csv
import json
import math
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.metrics.dockq import dockq
from analysis.metrics.lddt import lddt
from analysis.metrics.ligand import LigandSelector, ligand_pose
from analysis.structure_io import STRUCTURE_SUFFIXES, StructureReadError, read_structure

MONOMER = "monomer"
PROTEIN_LIGAND = "protein_ligand"
INTERFACE_TASKS = ("protein_protein", "antibody_antigen", "protein_peptide", "protein_dna", "protein_rna")
TASKS = (MONOMER, *INTERFACE_TASKS, PROTEIN_LIGAND)
SELECTIONS = ("top1", "best")
OK, FAILED, MISSING = "ok", "failed", "missing"


class TargetsFileError(ValueError):
    """The targets CSV is missing or malformed; the message lists every bad row and column."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path, self.problems = str(path), problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class Target:
    target_id: str
    task: str
    entry_id: str
    chain_ids: tuple[str, ...]
    reference: Path
    ligand: str | None = None


def _find_reference(references_dir: Path, entry_id: str) -> Path | None:
    for suffix in STRUCTURE_SUFFIXES:
        for name in (entry_id, entry_id.lower(), entry_id.upper()):
            path = references_dir / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def load_targets(path: str | Path, references_dir: str | Path | None = None) -> list[Target]:
    """Read and validate the targets CSV; raises :class:`TargetsFileError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise TargetsFileError(path, ["file not found"])
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise TargetsFileError(path, ["no target rows (expected a header and at least one row)"])
    rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in rows]
    missing_columns = [c for c in ("task", "entry_id", "chain_ids") if c not in rows[0]]
    if missing_columns:
        raise TargetsFileError(path, [f"missing column(s) {', '.join(missing_columns)}"])
    problems: list[str] = []
    targets: list[Target] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        task, entry_id = row["task"].lower(), row["entry_id"]
        target_id = row.get("target_id") or entry_id
        chains = tuple(c for c in re.split(r"[,;\s]+", row["chain_ids"]) if c)
        where = f"row {line} ({target_id or '?'})"
        if task not in TASKS:
            problems.append(f"{where}: task {task!r} is not one of {', '.join(TASKS)}")
        if not entry_id:
            problems.append(f"{where}: entry_id is empty")
        if target_id in seen:
            problems.append(f"{where}: duplicate target_id {target_id!r}")
        seen.add(target_id)
        expected = {MONOMER: 1, **dict.fromkeys(INTERFACE_TASKS, 2)}.get(task)
        if expected is not None and len(chains) != expected:
            problems.append(f"{where}: task {task} needs {expected} chain id(s), got {row['chain_ids']!r}")
        if task == PROTEIN_LIGAND:
            if not chains:
                problems.append(f"{where}: protein_ligand needs the receptor chain id(s)")
            try:
                LigandSelector.parse(row.get("ligand", ""))
            except ValueError as err:
                problems.append(f"{where}: column ligand: {err}")
        if row.get("reference"):
            reference = Path(row["reference"])
            reference = reference if reference.is_absolute() else path.parent / reference
        elif references_dir is not None:
            reference = _find_reference(Path(references_dir), entry_id) or Path(references_dir) / entry_id
        else:
            problems.append(f"{where}: no reference column and no references directory given")
            continue
        targets.append(Target(target_id, task, entry_id, chains, reference, row.get("ligand") or None))
    if problems:
        raise TargetsFileError(path, problems)
    return targets


# ---------------------------------------------------------------------------------------------------------
# Samples and selection.


@dataclass(frozen=True)
class Sample:
    index: int
    structure: Path
    ranking_score: float | None


def find_samples(predictions_dir: str | Path, target_id: str) -> list[Sample]:
    """The target's samples (``{target_id}_sample_{k}.*`` plus confidences JSON), ordered by k."""
    folder = Path(predictions_dir) / target_id
    pattern = re.compile(rf"^{re.escape(target_id)}_sample_(\d+)(\.cif|\.cif\.gz|\.pdb|\.pdb\.gz|\.bcif)$")
    samples = []
    for path in sorted(folder.glob(f"{target_id}_sample_*")) if folder.is_dir() else []:
        match = pattern.match(path.name)
        if not match:
            continue
        k = int(match.group(1))
        score = None
        confidences = folder / f"{target_id}_sample_{k}_confidences.json"
        if confidences.is_file():
            try:
                value = json.loads(confidences.read_text()).get("ranking_score")
                score = float(value) if value is not None and math.isfinite(float(value)) else None
            except (ValueError, TypeError, AttributeError):
                score = None
        samples.append(Sample(k, path, score))
    return sorted(samples, key=lambda s: s.index)


def select_top1(samples: list[Sample]) -> Sample:
    """The sample with the highest ranking score; raises ValueError when scores are missing."""
    if len(samples) == 1:
        return samples[0]
    unscored = [s.index for s in samples if s.ranking_score is None]
    if unscored:
        raise ValueError(
            f"samples {unscored} have no finite ranking_score in their confidences JSON; top-1 selection "
            "needs one per sample"
        )
    return max(samples, key=lambda s: s.ranking_score)


# ---------------------------------------------------------------------------------------------------------
# Scoring.


def _require_mapped(chain_map: dict[str, str], chains: tuple[str, ...]) -> None:
    from analysis.metrics.correspondence import CorrespondenceError

    unmapped = [c for c in chains if c not in chain_map]
    if unmapped:
        raise CorrespondenceError(
            f"prediction has no chain matching reference chain(s) {', '.join(unmapped)} (missing, wrong "
            "sequence, or renamed under strict chain mapping)"
        )


def score_model(target: Target, reference, model, *, strict: bool = False) -> dict[str, float]:
    """Task metrics of one model; the key ``primary`` is the value oracle selection maximises."""
    if target.task == MONOMER:
        result = lddt(reference, model, chains=list(target.chain_ids), strict=strict)
        _require_mapped(result.chain_map, target.chain_ids)
        return {"lddt": result.score, "primary": result.score}
    if target.task in INTERFACE_TASKS:
        result = dockq(reference, model, chains=list(target.chain_ids), strict=strict)
        _require_mapped(result.chain_map, target.chain_ids)
        interface = result.interface(*target.chain_ids)
        return {
            "dockq": interface.dockq,
            "fnat": interface.fnat,
            "irmsd": interface.irmsd,
            "lrmsd": interface.lrmsd,
            "success": float(interface.success),
            "primary": interface.dockq,
        }
    pose = ligand_pose(reference, model, target.ligand or "")
    return {
        "ligand_rmsd": pose.rmsd,
        "lddt_pli": pose.lddt_pli,
        "success": float(pose.success),
        "primary": -pose.rmsd,
    }


def _describe(err: Exception) -> str:
    if isinstance(err, ValueError):
        return str(err)
    # Not a user-input error: keep the type and where it happened, so the bug can be found.
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(err).__name__}{where}: {err}"


def evaluate_target(
    target: Target, predictions_dir: str | Path, *, select: str = "top1", strict: bool = False
) -> dict:
    """One raw row for ``target``: status, error, chosen sample and its metrics; never raises for bad data."""
    row: dict = {
        "target_id": target.target_id,
        "task": target.task,
        "entry_id": target.entry_id,
        "chain_ids": ",".join(target.chain_ids),
        "status": OK,
        "error": "",
    }
    samples = find_samples(predictions_dir, target.target_id)
    row["n_samples"] = len(samples)
    if not samples:
        row.update(status=MISSING, error=f"no samples under {Path(predictions_dir) / target.target_id}")
        return row
    try:
        reference = read_structure(target.reference)
    except StructureReadError as err:
        row.update(status=FAILED, error=f"reference: {err}")
        return row
    try:
        chosen = [select_top1(samples)] if select == "top1" else samples
    except ValueError as err:
        row.update(status=FAILED, error=str(err))
        return row
    best: tuple[Sample, dict] | None = None
    errors = []
    for sample in chosen:
        try:
            metrics = score_model(target, reference, read_structure(sample.structure), strict=strict)
        except Exception as err:  # one bad prediction must not stop the evaluation
            errors.append(f"sample {sample.index}: {_describe(err)}")
            continue
        if best is None or metrics["primary"] > best[1]["primary"]:
            best = (sample, metrics)
    if best is None:
        row.update(status=FAILED, error="; ".join(errors))
        return row
    sample, metrics = best
    metrics = {k: v for k, v in metrics.items() if k != "primary"}
    row.update(sample=sample.index, ranking_score=sample.ranking_score, error="; ".join(errors), **metrics)
    return row


def evaluate(
    targets: list[Target], predictions_dir: str | Path, *, select: str = "top1", strict: bool = False
) -> pd.DataFrame:
    """Raw per-target table (one row per target, in CSV order)."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    rows = [evaluate_target(t, predictions_dir, select=select, strict=strict) for t in targets]
    columns = [
        "target_id", "task", "entry_id", "chain_ids", "status", "error", "n_samples", "sample",
        "ranking_score", "lddt", "dockq", "fnat", "irmsd", "lrmsd", "ligand_rmsd", "lddt_pli", "success",
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _mean(values: pd.Series) -> float:
    values = values.astype(float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def summarize(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per task present: counts, the headline metric with failures counted (``value``) and dropped
    (``value_evaluated_only``), and means of the component metrics over evaluated targets.

    Headline: monomer → mean lDDT; interface tasks → DockQ ≥ 0.23 success rate; protein_ligand → success rate
    of RMSD < 2 Å and lDDT-PLI > 0.8.
    """
    rows = []
    for task in [t for t in TASKS if t in set(raw["task"])]:
        part = raw[raw["task"] == task]
        ok = part[part["status"] == OK]
        metric = "mean_lddt" if task == MONOMER else "success_rate"
        column = "lddt" if task == MONOMER else "success"
        per_target = part[column].astype(float).where(part["status"] == OK, 0.0).fillna(0.0)
        rows.append(
            {
                "task": task,
                "n_targets": len(part),
                "n_evaluated": len(ok),
                "n_failed": int((part["status"] == FAILED).sum()),
                "n_missing": int((part["status"] == MISSING).sum()),
                "metric": metric,
                "value": float(per_target.mean()),
                "value_evaluated_only": _mean(ok[column]),
                "mean_lddt": _mean(ok["lddt"]),
                "mean_dockq": _mean(ok["dockq"]),
                "mean_irmsd": _mean(ok["irmsd"]),
                "mean_lrmsd": _mean(ok["lrmsd"]),
                "mean_ligand_rmsd": _mean(ok["ligand_rmsd"]),
                "mean_lddt_pli": _mean(ok["lddt_pli"]),
            }
        )
    return pd.DataFrame(rows)
