"""Targets of an evaluation: the :class:`Target` rows and the two CSV formats :func:`load_targets` reads
(header names are case-insensitive).

1. The project's own list, one row per target:

   - ``task``: monomer, monomer_rna, monomer_dna, protein_protein, antibody_antigen, protein_peptide,
     protein_dna, protein_rna or protein_ligand.
   - ``entry_id``: the reference entry; the reference file is ``reference`` (a path, relative to the CSV) when
     that column is given, else ``{references_dir}/{entry_id}.{cif,cif.gz,pdb,...}``.
   - ``chain_ids``: reference chain ids, separated by ``,`` ``;`` or spaces: one chain for a monomer, the two
     chains of the interface for interface tasks, the receptor chain(s) for protein_ligand.
   - ``target_id`` (optional, default ``entry_id``): the row's name; ``prediction_id`` (optional, default
     ``target_id``): the predictor's job / folder name.
   - ``ligand`` (protein_ligand only): ``CCD``, ``CHAIN:CCD``, ``CHAIN:CCD:RESNUM`` or ``CHAIN:*``.

2. FoldBench's own target lists (``foldbench_targets/{monomer_protein,interface_protein_ligand,...}.csv``),
   recognised by their ``pdb_id`` column; the task comes from the file name; the folder name is ``pdb_id``, the
   reference ``{references_dir}/{pdb_id}.cif``; protein–ligand rows select the ligand by its chain
   (``native_chain_id_*`` of type ligand) and CCD code (``ligand_id``). One row per interface, so several rows
   share an entry: each sample is read once and scored for all of them.

Chain ids are read as ``label_asym_id`` or author ids, chosen per call (``chain_ids``; default: label for
FoldBench lists, author for the project's list).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.metrics.ligand import LigandSelector
from analysis.structure_io import AUTH, CHAIN_ID_KINDS, LABEL, STRUCTURE_SUFFIXES

MONOMER, MONOMER_RNA, MONOMER_DNA = "monomer", "monomer_rna", "monomer_dna"
MONOMER_TASKS = (MONOMER, MONOMER_RNA, MONOMER_DNA)
PROTEIN_LIGAND = "protein_ligand"
INTERFACE_TASKS = ("protein_protein", "antibody_antigen", "protein_peptide", "protein_dna", "protein_rna")
TASKS = (*MONOMER_TASKS, *INTERFACE_TASKS, PROTEIN_LIGAND)
# FoldBench target-list file names → task.
FOLDBENCH_FILES = {
    "monomer_protein": MONOMER,
    "monomer_rna": MONOMER_RNA,
    "monomer_dna": MONOMER_DNA,
    **{f"interface_{t}": t for t in INTERFACE_TASKS},
    "interface_protein_ligand": PROTEIN_LIGAND,
}


class TargetsFileError(ValueError):
    """The targets CSV is missing or malformed; the message lists every bad row and column."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path, self.problems = str(path), problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class Target:
    """One row to score. ``prediction_id``: the predictor's folder name (default ``target_id``);
    ``chain_id_kind``: how ``chain_ids`` and the ligand's chain name chains ("auth" or "label")."""

    target_id: str
    task: str
    entry_id: str
    chain_ids: tuple[str, ...]
    reference: Path
    ligand: str | None = None
    prediction_id: str | None = None
    chain_id_kind: str = AUTH

    @property
    def folder(self) -> str:
        return self.prediction_id or self.target_id


def _find_reference(references_dir: Path, entry_id: str) -> Path | None:
    for suffix in STRUCTURE_SUFFIXES:
        for name in (entry_id, entry_id.lower(), entry_id.upper()):
            path = references_dir / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def _reference_path(
    row: dict, entry_id: str, csv_path: Path, references_dir: str | Path | None
) -> Path | None:
    if row.get("reference"):
        reference = Path(row["reference"])
        return reference if reference.is_absolute() else csv_path.parent / reference
    if references_dir is None:
        return None
    return _find_reference(Path(references_dir), entry_id) or Path(references_dir) / entry_id


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise TargetsFileError(path, ["file not found"])
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise TargetsFileError(path, ["no target rows (expected a header and at least one row)"])
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in rows]


def load_targets(
    path: str | Path, references_dir: str | Path | None = None, *, chain_ids: str | None = None
) -> list[Target]:
    """Read and validate a targets CSV (either format, see the module docstring).

    ``chain_ids``: "label" or "auth"; None picks label for FoldBench lists and auth for the project's list.
    Raises :class:`TargetsFileError` listing every problem.
    """
    path = Path(path)
    if chain_ids is not None and chain_ids not in CHAIN_ID_KINDS:
        raise ValueError(f"chain_ids {chain_ids!r}: expected one of {', '.join(CHAIN_ID_KINDS)}")
    rows = _read_rows(path)
    if "pdb_id" in rows[0]:
        return _load_foldbench(path, rows, references_dir, chain_ids or LABEL)
    kind = chain_ids or AUTH
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
        expected = {**dict.fromkeys(MONOMER_TASKS, 1), **dict.fromkeys(INTERFACE_TASKS, 2)}.get(task)
        if expected is not None and len(chains) != expected:
            problems.append(f"{where}: task {task} needs {expected} chain id(s), got {row['chain_ids']!r}")
        if task == PROTEIN_LIGAND:
            if not chains:
                problems.append(f"{where}: protein_ligand needs the receptor chain id(s)")
            try:
                LigandSelector.parse(row.get("ligand", ""))
            except ValueError as err:
                problems.append(f"{where}: column ligand: {err}")
        reference = _reference_path(row, entry_id, path, references_dir)
        if reference is None:
            problems.append(f"{where}: no reference column and no references directory given")
            continue
        targets.append(
            Target(
                target_id, task, entry_id, chains, reference, row.get("ligand") or None,
                row.get("prediction_id") or None, kind,
            )
        )  # fmt: skip
    if problems:
        raise TargetsFileError(path, problems)
    return targets


def _load_foldbench(
    path: Path, rows: list[dict], references_dir: str | Path | None, kind: str
) -> list[Target]:
    stem = path.name.lower().removesuffix(".csv")
    task = next((t for name, t in FOLDBENCH_FILES.items() if stem.endswith(name)), None)
    if task is None:
        raise TargetsFileError(
            path, [f"a FoldBench target list (pdb_id column) must be named one of {', '.join(FOLDBENCH_FILES)}.csv"]
        )
    if references_dir is None:
        raise TargetsFileError(path, ["FoldBench target lists need a references directory ({pdb_id}.cif)"])
    columns = {
        **dict.fromkeys(MONOMER_TASKS, ("chain_id",)),
        **dict.fromkeys(INTERFACE_TASKS, ("interface_chain_id_1", "interface_chain_id_2")),
        PROTEIN_LIGAND: ("native_chain_id_1", "native_chain_id_2", "native_chain_type_1", "native_chain_type_2"),
    }[task]
    missing_columns = [c for c in columns if c not in rows[0]]
    if missing_columns:
        raise TargetsFileError(path, [f"missing column(s) {', '.join(missing_columns)} for {stem}"])
    problems, targets, seen = [], [], set()
    for line, row in enumerate(rows, start=2):
        pdb_id = row["pdb_id"]
        where = f"row {line} ({pdb_id or '?'})"
        ligand = None
        if task in MONOMER_TASKS:
            chains = (row["chain_id"],)
        elif task in INTERFACE_TASKS:
            chains = (row["interface_chain_id_1"], row["interface_chain_id_2"])
        else:
            types = (row["native_chain_type_1"].lower(), row["native_chain_type_2"].lower())
            if types.count("ligand") != 1:
                problems.append(f"{where}: expected exactly one chain of type ligand, got types {types}")
                continue
            lig_col = 1 if types[0] == "ligand" else 2
            chains = (row[f"native_chain_id_{3 - lig_col}"],)
            code = row.get("ligand_id", "").strip("()").strip()
            ligand_chain = row[f"native_chain_id_{lig_col}"]
            # Multi-residue ligands ("NAG-NAG") are selected by chain alone.
            ligand = f"{ligand_chain}:{code}" if code and "-" not in code else f"{ligand_chain}:*"
        if not pdb_id or not all(chains):
            problems.append(f"{where}: empty pdb_id or chain id")
            continue
        target_id = pdb_id if task in MONOMER_TASKS else ":".join((pdb_id, *chains, *([ligand] if ligand else [])))
        if target_id in seen:
            problems.append(f"{where}: duplicate target {target_id!r}")
        seen.add(target_id)
        reference = _find_reference(Path(references_dir), pdb_id) or Path(references_dir) / f"{pdb_id}.cif"
        targets.append(Target(target_id, task, pdb_id, chains, reference, ligand, pdb_id, kind))
    if problems:
        raise TargetsFileError(path, problems)
    return targets
