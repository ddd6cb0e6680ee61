"""FoldBench-style evaluation: score every sample of every target, pick the top-1 per target, summarise per task.

Targets and their CSV formats: :mod:`analysis.targets`. Predictions are read in the layouts of
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
from analysis.metrics.ligand import ligand_pose
from analysis.metrics.nonstandard import NONSTANDARD_MODES, PARENT, apply_nonstandard
from analysis.predictor_layouts import AUTO, LAYOUTS, Sample
from analysis.predictor_layouts import find_samples as _find_layout_samples
from analysis.structure_io import (
    AUTH,
    LABEL,
    StructureReadError,
    is_mmcif,
    read_structure,
)
from analysis.targets import INTERFACE_TASKS, MONOMER_TASKS, TASKS, Target

SELECTIONS = ("top1", "best")
LDDT_SCOPES = ("complex", "interface")
OK, FAILED, MISSING = "ok", "failed", "missing"
INTERFACE_CONTACT = 5.0  # Å, heavy atoms: two reference chains form an interface (DockQ's contact cutoff)


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
