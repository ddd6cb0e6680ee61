"""FoldBench-style evaluation: score every sample of every target, pick the top-1 per target, summarise per task.

Targets come from either of two CSV formats (header names are case-insensitive):

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
FoldBench lists, author for the project's list). Predictions are read in the layouts of
:mod:`analysis.predictor_layouts`. Non-standard residues are mapped to their parents before scoring, as
OpenStructure 2.8 does (:mod:`analysis.metrics.nonstandard`; ``nonstandard="keep"`` scores them as they are).
Ligand metrics follow a named convention (:mod:`analysis.conventions`): FoldBench's by default (lDDT-PLI over
reference contacts only), or newer OpenStructure's ("ost-latest", model-only contacts penalised).

Every sample is scored (:func:`score_samples`: one row per sample and target); :func:`select_samples` then
keeps per target the top-1 by ranking score (``select="best"``: the oracle, the best task metric). Failed and
missing predictions are **not dropped**: every target yields one row with ``status`` ok / failed / missing and
the error. In the summary they count as failures (success 0, lDDT 0) in ``value``; ``value_evaluated_only``
gives FoldBench's convention (failures dropped) next to it, with the counts. Each sample row also reports the
reference's polymer interfaces that no prediction chain can map onto (``unmapped_interfaces``).
"""

from __future__ import annotations

import csv
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree

from analysis.conventions import DEFAULT_CONVENTION, convention
from analysis.metrics.chain_mapping import candidate_chains
from analysis.metrics.correspondence import CorrespondenceError, polymer_chains
from analysis.metrics.dockq import dockq
from analysis.metrics.lddt import lddt
from analysis.metrics.ligand import LigandSelector, ligand_pose
from analysis.metrics.nonstandard import NONSTANDARD_MODES, PARENT, apply_nonstandard
from analysis.predictor_layouts import AUTO, LAYOUTS, Sample
from analysis.predictor_layouts import find_samples as _find_layout_samples
from analysis.structure_io import (
    AUTH,
    CHAIN_ID_KINDS,
    LABEL,
    STRUCTURE_SUFFIXES,
    StructureReadError,
    is_mmcif,
    read_structure,
)

MONOMER, MONOMER_RNA, MONOMER_DNA = "monomer", "monomer_rna", "monomer_dna"
MONOMER_TASKS = (MONOMER, MONOMER_RNA, MONOMER_DNA)
PROTEIN_LIGAND = "protein_ligand"
INTERFACE_TASKS = ("protein_protein", "antibody_antigen", "protein_peptide", "protein_dna", "protein_rna")
TASKS = (*MONOMER_TASKS, *INTERFACE_TASKS, PROTEIN_LIGAND)
SELECTIONS = ("top1", "best")
LDDT_SCOPES = ("complex", "interface")
OK, FAILED, MISSING = "ok", "failed", "missing"
# FoldBench target-list file names → task.
FOLDBENCH_FILES = {
    "monomer_protein": MONOMER,
    "monomer_rna": MONOMER_RNA,
    "monomer_dna": MONOMER_DNA,
    **{f"interface_{t}": t for t in INTERFACE_TASKS},
    "interface_protein_ligand": PROTEIN_LIGAND,
}
INTERFACE_CONTACT = 5.0  # Å, heavy atoms: two reference chains form an interface (DockQ's contact cutoff)


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


@dataclass(frozen=True)
class EvalOptions:
    """How to score. ``lddt_scopes``: extra lDDT columns, "complex" (all polymer chains) and/or "interface"
    (inter-chain pairs of an interface target's two chains). ``convention``: a name in
    ``analysis.conventions.CONVENTIONS``; FoldBench's (default) scores lDDT-PLI over reference contacts only,
    as FoldBench's published outputs were, "ost-latest" also penalises model-only contacts."""

    strict: bool = False
    nonstandard: str = PARENT
    lddt_scopes: tuple[str, ...] = ()
    convention: str = DEFAULT_CONVENTION
    layout: str = AUTO

    @property
    def add_mdl_contacts(self) -> bool:
        return convention(self.convention).add_mdl_contacts

    def __post_init__(self) -> None:
        convention(self.convention)  # raises ValueError for an unknown name
        if self.nonstandard not in NONSTANDARD_MODES:
            raise ValueError(f"nonstandard {self.nonstandard!r}: expected one of {', '.join(NONSTANDARD_MODES)}")
        bad = [s for s in self.lddt_scopes if s not in LDDT_SCOPES]
        if bad:
            raise ValueError(f"lDDT scope {', '.join(map(repr, bad))}: expected {', '.join(LDDT_SCOPES)}")
        if self.layout != AUTO and self.layout not in LAYOUTS:
            raise ValueError(f"layout {self.layout!r}: expected {AUTO} or one of {', '.join(LAYOUTS)}")


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


# ---------------------------------------------------------------------------------------------------------
# Samples and selection.


def find_samples(predictions_dir: str | Path, target_id: str, layout: str = AUTO) -> list[Sample]:
    """The target's samples in any supported predictor layout (see :mod:`analysis.predictor_layouts`)."""
    return _find_layout_samples(predictions_dir, target_id, layout)


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


def _require_chains(target: Target, reference) -> None:
    present = list(dict.fromkeys(reference.chain_id.tolist()))
    missing = [c for c in target.chain_ids if c not in present]
    if missing:
        kind = "label_asym_id" if target.chain_id_kind == LABEL else "author chain id"
        other = "auth" if target.chain_id_kind == LABEL else "label"
        raise CorrespondenceError(
            f"chain(s) {', '.join(repr(c) for c in missing)} not in reference {target.reference.name} by "
            f"{kind} (it has {', '.join(present)}); to name chains by {other} ids, use --chain-ids {other}"
        )


def _require_mapped(chain_map: dict[str, str], chains: tuple[str, ...]) -> None:
    unmapped = [c for c in chains if c not in chain_map]
    if unmapped:
        raise CorrespondenceError(
            f"prediction has no chain matching reference chain(s) {', '.join(unmapped)} (missing, wrong "
            "sequence, or renamed under strict chain mapping)"
        )


def score_model(
    target: Target,
    reference,
    model,
    *,
    strict: bool = False,
    options: EvalOptions | None = None,
    cache: dict | None = None,
) -> dict[str, float]:
    """Task metrics of one model; the key ``primary`` is the value oracle selection maximises.

    ``cache``: a dict shared by the targets scored on the same (reference, model) pair, so that per-structure
    values (the whole-complex lDDT) are computed once.
    """
    options = options or EvalOptions(strict=strict)
    strict = strict or options.strict
    cache = {} if cache is None else cache
    _require_chains(target, reference)
    extra: dict[str, float] = {}
    if "complex" in options.lddt_scopes:
        if "lddt_complex" not in cache:
            cache["lddt_complex"] = lddt(reference, model, strict=strict).score
        extra["lddt_complex"] = cache["lddt_complex"]
    if target.task in MONOMER_TASKS:
        result = lddt(reference, model, chains=list(target.chain_ids), strict=strict)
        _require_mapped(result.chain_map, target.chain_ids)
        return {"lddt": result.score, **extra, "primary": result.score}
    if target.task in INTERFACE_TASKS:
        result = dockq(reference, model, chains=list(target.chain_ids), strict=strict)
        _require_mapped(result.chain_map, target.chain_ids)
        interface = result.interface(*target.chain_ids)
        if "interface" in options.lddt_scopes:
            extra["lddt_interface"] = lddt(
                reference, model, chains=list(target.chain_ids), chain_map=result.chain_map, interface_only=True
            ).score
        return {
            "dockq": interface.dockq,
            "fnat": interface.fnat,
            "irmsd": interface.irmsd,
            "lrmsd": interface.lrmsd,
            "success": float(interface.success),
            **extra,
            "primary": interface.dockq,
        }
    pose = ligand_pose(reference, model, target.ligand or "", add_mdl_contacts=options.add_mdl_contacts)
    return {
        "ligand_rmsd": pose.rmsd,
        "lddt_pli": pose.lddt_pli,
        "success": float(pose.success),
        **extra,
        "primary": -pose.rmsd,
    }


def reference_interfaces(reference) -> list[tuple[str, str]]:
    """Pairs of reference polymer chains with any heavy-atom pair closer than 5 Å, in chain order."""
    chains = polymer_chains(reference)
    trees = {c: cKDTree(chain.atoms.coord) for c, chain in chains.items()}
    ids = list(chains)
    return [
        (a, b)
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
        if trees[a].count_neighbors(trees[b], INTERFACE_CONTACT) > 0
    ]


def unmapped_interfaces(reference, model, interfaces: list[tuple[str, str]], *, strict: bool = False) -> list[str]:
    """Reference interfaces ("A-B") with a chain that no prediction chain can map onto.

    Chains are mappable when a model chain of the same entity is free for them: a maximum bipartite matching
    over the sequence-identity candidates of :func:`analysis.metrics.chain_mapping.candidate_chains`.
    """
    if not interfaces:
        return []
    ref_chains, model_chains = polymer_chains(reference), polymer_chains(model)
    candidates = candidate_chains(ref_chains, model_chains, strict=strict)
    ref_ids, model_ids = list(ref_chains), list(model_chains)
    rows = [i for i, r in enumerate(ref_ids) for m in candidates[r] for _ in [m]]
    cols = [model_ids.index(m) for r in ref_ids for m in candidates[r]]
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ref_ids), max(len(model_ids), 1)))
    match = maximum_bipartite_matching(graph, perm_type="column") if len(rows) else np.full(len(ref_ids), -1)
    mapped = {r for r, m in zip(ref_ids, match, strict=True) if m >= 0}
    return [f"{a}-{b}" for a, b in interfaces if a not in mapped or b not in mapped]


def _describe(err: Exception) -> str:
    if isinstance(err, ValueError):
        return str(err)
    # Not a user-input error: keep the type and where it happened, so the bug can be found.
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(err).__name__}{where}: {err}"


def _base_row(target: Target) -> dict:
    return {
        "target_id": target.target_id,
        "task": target.task,
        "entry_id": target.entry_id,
        "chain_ids": ",".join(target.chain_ids),
    }


@dataclass
class _Group:
    """Targets that share a prediction folder and a reference: their samples are read once."""

    targets: list[Target] = field(default_factory=list)


def score_samples(
    targets: list[Target], predictions_dir: str | Path, options: EvalOptions | None = None
) -> pd.DataFrame:
    """One row per (target, sample): status, error, ranking score, metrics (missing targets: one row, no sample).

    Never raises for bad data: a reference or sample that cannot be read or scored becomes a failed row.
    """
    options = options or EvalOptions()
    groups: dict[tuple[str, str, str], _Group] = {}
    for target in targets:
        key = (target.folder.lower(), str(target.reference), target.chain_id_kind)
        groups.setdefault(key, _Group()).targets.append(target)
    rows: list[dict] = []
    for group in groups.values():
        first = group.targets[0]
        samples = find_samples(predictions_dir, first.folder, options.layout)
        if not samples:
            for target in group.targets:
                rows.append({**_base_row(target), "status": MISSING, "n_samples": 0,
                             "error": f"no samples for {first.folder!r} under {predictions_dir} "
                                      f"(layout {options.layout})"})  # fmt: skip
            continue
        try:
            reference = apply_nonstandard(read_structure(first.reference, first.chain_id_kind), options.nonstandard)
        except StructureReadError as err:
            for target in group.targets:
                rows.append({**_base_row(target), "status": FAILED, "n_samples": len(samples),
                             "error": f"reference: {err}"})  # fmt: skip
            continue
        interfaces = reference_interfaces(reference)
        for sample in samples:
            info = {"n_samples": len(samples), "sample": sample.index, "sample_name": sample.name,
                    "ranking_score": sample.ranking_score, "layout": sample.layout,
                    "n_reference_interfaces": len(interfaces)}  # fmt: skip
            try:
                kind = first.chain_id_kind if is_mmcif(sample.structure) else AUTH
                model = apply_nonstandard(read_structure(sample.structure, kind), options.nonstandard)
                missing = unmapped_interfaces(reference, model, interfaces, strict=options.strict)
            except StructureReadError as err:
                for target in group.targets:
                    rows.append({**_base_row(target), **info, "status": FAILED, "error": str(err)})
                continue
            info["unmapped_interfaces"] = ";".join(missing)
            cache: dict = {}
            for target in group.targets:
                try:
                    metrics = score_model(target, reference, model, options=options, cache=cache)
                except Exception as err:  # one bad prediction must not stop the evaluation
                    rows.append({**_base_row(target), **info, "status": FAILED, "error": _describe(err)})
                    continue
                rows.append({**_base_row(target), **info, "status": OK, "error": "", **metrics})
    return pd.DataFrame(rows).reindex(columns=SAMPLE_COLUMNS)


def select_samples(samples: pd.DataFrame, targets: list[Target], select: str = "top1") -> pd.DataFrame:
    """One row per target (in ``targets`` order) from :func:`score_samples`' table.

    ``top1``: the sample with the highest ranking score (a single sample needs none); the target fails when that
    sample failed or any sample lacks a ranking score. ``best``: the scored sample with the best task metric.
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    by_target = {t: part for t, part in samples.groupby("target_id", sort=False)}
    rows = []
    for target in targets:
        part = by_target.get(target.target_id)
        if part is None:
            continue
        with_sample = part[part["sample"].notna()]
        if part["status"].eq(MISSING).all() or with_sample.empty:
            rows.append(part.iloc[0].to_dict())
            continue
        if select == "top1":
            unscored = with_sample[with_sample["ranking_score"].isna()]
            if len(with_sample) > 1 and len(unscored):
                row = with_sample.iloc[0].to_dict()
                row.update(status=FAILED, error=(
                    f"samples {[int(k) for k in unscored['sample']]} have no finite ranking score; top-1 "
                    "selection needs one per sample"))  # fmt: skip
                rows.append({k: v for k, v in row.items() if k in _IDENTITY})
                continue
            chosen = with_sample.loc[with_sample["ranking_score"].astype(float).fillna(-np.inf).idxmax()]
            row = chosen.to_dict()
            if row["status"] != OK:
                row["error"] = f"top-1 sample {int(row['sample'])}: {row['error']}"
            rows.append(row)
            continue
        ok = with_sample[with_sample["status"] == OK]
        if ok.empty:
            row = {k: v for k, v in with_sample.iloc[0].to_dict().items() if k in _IDENTITY}
            errors = [f"sample {int(r['sample'])}: {r['error']}" for _, r in with_sample.iterrows()]
            row.update(status=FAILED, error="; ".join(errors))
            rows.append(row)
            continue
        rows.append(ok.loc[ok["primary"].astype(float).idxmax()].to_dict())
    return pd.DataFrame(rows).reindex(columns=RAW_COLUMNS)


def evaluate_all(
    targets: list[Target],
    predictions_dir: str | Path,
    *,
    select: str = "top1",
    options: EvalOptions | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-target table of the selected samples, per-sample table)."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    samples = score_samples(targets, predictions_dir, options)
    return select_samples(samples, targets, select), samples


def evaluate(
    targets: list[Target],
    predictions_dir: str | Path,
    *,
    select: str = "top1",
    strict: bool = False,
    options: EvalOptions | None = None,
) -> pd.DataFrame:
    """Per-target table (one row per target, in CSV order) of the selected samples."""
    if options is None:
        options = EvalOptions(strict=strict)
    elif strict and not options.strict:
        raise ValueError("give strict chain mapping through options.strict when passing options")
    return evaluate_all(targets, predictions_dir, select=select, options=options)[0]


_IDENTITY = ("target_id", "task", "entry_id", "chain_ids", "status", "error", "n_samples", "layout",
             "n_reference_interfaces", "unmapped_interfaces")  # fmt: skip
_METRICS = ["lddt", "dockq", "fnat", "irmsd", "lrmsd", "ligand_rmsd", "lddt_pli", "success", "lddt_complex",
            "lddt_interface"]  # fmt: skip
RAW_COLUMNS = [
    "target_id", "task", "entry_id", "chain_ids", "status", "error", "n_samples", "sample", "ranking_score",
    *_METRICS[:8], "sample_name", "layout", *_METRICS[8:], "n_reference_interfaces", "unmapped_interfaces",
]  # fmt: skip
SAMPLE_COLUMNS = [*RAW_COLUMNS, "primary"]


def _mean(values: pd.Series) -> float:
    values = values.astype(float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def summarize(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per task present: counts, the headline metric with failures counted (``value``) and dropped
    (``value_evaluated_only``), and means of the component metrics over evaluated targets.

    Headline: monomers → mean lDDT; interface tasks → DockQ ≥ 0.23 success rate; protein_ligand → success rate
    of RMSD < 2 Å and lDDT-PLI > 0.8. ``n_unmapped_interface_targets``: targets whose selected sample left a
    reference interface without a prediction chain to map onto.
    """
    rows = []
    for task in [t for t in TASKS if t in set(raw["task"])]:
        part = raw[raw["task"] == task]
        ok = part[part["status"] == OK]
        monomer = task in MONOMER_TASKS
        metric = "mean_lddt" if monomer else "success_rate"
        column = "lddt" if monomer else "success"
        per_target = part[column].astype(float).where(part["status"] == OK, 0.0).fillna(0.0)
        unmapped = part["unmapped_interfaces"].fillna("").astype(str).str.len() > 0
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
                "mean_lddt_complex": _mean(ok["lddt_complex"]),
                "mean_lddt_interface": _mean(ok["lddt_interface"]),
                "n_unmapped_interface_targets": int(unmapped.sum()),
            }
        )
    return pd.DataFrame(rows)
