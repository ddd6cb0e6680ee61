"""Preprocessed feature cache: parse + tokenise + MSA once, so training never reads mmCIF in its hot loop.

Layout of a cache folder::

    index.json          settings and one record per kept entry (tokens, atoms, MSA depth, split, cluster)
    rejects.json        one record per skipped input: path, kind (parse, unknown_ccd, msa, ...), reason
    examples/<id>.npz   the arrays of ``tokenize.Tokens`` plus msa (S, N) int8, msa_mask (S, N) bool,
                        deletions (S, N) int32, profile (N, 32) float32, deletion_mean (N,) float32
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harness.data.constants import LIGAND, MOL_TYPE_NAMES
from harness.data.errors import DataPathError, RecordError
from harness.data.msa import chain_msa, example_msa, msa_files_for
from harness.data.parse import is_structure_file, read_structure
from harness.data.tokenize import tokenize

CACHE_VERSION = 1
INDEX = "index.json"
REJECTS = "rejects.json"


@dataclass
class PrepareReport:
    """What ``prepare`` did: kept entries and skipped inputs (each with its reason)."""

    cache_dir: str
    kept: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)


def is_cache(path: Path) -> bool:
    return (Path(path) / INDEX).is_file()


def hash_split(entry_id: str, val_fraction: float) -> str:
    """Deterministic split by entry id: the same entry lands in the same split on every machine."""
    h = int(hashlib.sha256(entry_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def _cluster_key(chains: list[dict]) -> str:
    """Exact-sequence cluster: entries with the same set of polymer sequences share a cluster."""
    seqs = sorted({"-".join(c["sequence"]) for c in chains if c["mol_type"] != LIGAND})
    return hashlib.sha256("|".join(seqs).encode()).hexdigest()[:16]


def build_example(
    path: str | Path,
    msa_dir: str | Path | None,
    *,
    predicted: bool = False,
    plddt_min: float | None = None,
    max_msa_rows: int = 1024,
    drop_crystallization_aids: bool = True,
):
    """Parse, tokenise and attach MSAs: ``(structure, tokens, msa_rejects)``; ``tokens.arrays`` gains the MSA
    arrays. An MSA whose query disagrees with its chain is skipped (the entity stays query-only) and reported in
    ``msa_rejects``; a structure that cannot be used raises a ``RecordError`` naming the file."""
    structure = read_structure(
        path, predicted=predicted, plddt_min=plddt_min, drop_crystallization_aids=drop_crystallization_aids
    )
    tokens = tokenize(structure)
    arrays = tokens.arrays
    rejects: list[dict] = []
    per_entity: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if msa_dir is not None:
        for chain in tokens.chains:
            if chain["mol_type"] == LIGAND or chain["entity_id"] in per_entity:
                continue
            files = msa_files_for(Path(msa_dir), structure.entry_id, chain["auth_id"])
            if not files:
                continue
            query = arrays["restype"][chain["token_start"] : chain["token_end"]]
            try:
                per_entity[chain["entity_id"]] = chain_msa(files, query, chain["mol_type"], max_msa_rows)
            except RecordError as exc:
                rejects.append(
                    {
                        "path": exc.path,
                        "kind": exc.kind,
                        "reason": f"{exc.reason}; entry {structure.entry_id} chain {chain['auth_id']} "
                        "kept with a query-only MSA",
                    }
                )
    arrays.update(example_msa(arrays["restype"], arrays["asym_id"], tokens.chains, per_entity, max_msa_rows))
    return structure, tokens, rejects


def _prepare_one(args: tuple) -> tuple[dict | None, list[dict], dict[str, np.ndarray] | None]:
    path, msa_dir, opts = args
    try:
        structure, tokens, rejects = build_example(path, msa_dir, **opts)
    except RecordError as exc:
        return None, [{"path": exc.path, "kind": exc.kind, "reason": exc.reason}], None
    arrays = tokens.arrays
    entry_id = structure.entry_id
    mol_types = sorted({MOL_TYPE_NAMES[c["mol_type"]] for c in tokens.chains})
    record = {
        "entry_id": entry_id,
        "source": str(path),
        "n_tokens": tokens.n_tokens,
        "n_atoms": tokens.n_atoms,
        "n_resolved_atoms": int(arrays["gt_atom_mask"].sum()),
        "n_chains": len(tokens.chains),
        "msa_depth": int(arrays["msa"].shape[0]),
        "mol_types": mol_types,
        "chains": [
            {k: c[k] for k in ("asym_id", "auth_id", "entity_id", "mol_type")}
            | {"length": len(c["sequence"])}
            for c in tokens.chains
        ],
        "cluster": _cluster_key(tokens.chains),
    }
    return record, rejects, arrays


def prepare(
    src_dir: str | Path,
    cache_dir: str | Path,
    *,
    msa_dir: str | Path | None = None,
    splits: dict[str, str] | None = None,
    val_fraction: float = 0.1,
    predicted: bool = False,
    plddt_min: float | None = None,
    max_msa_rows: int = 1024,
    drop_crystallization_aids: bool = True,
    workers: int = 1,
) -> PrepareReport:
    """Turn every structure file under ``src_dir`` (recursively) into a cache at ``cache_dir``.

    Bad inputs never stop preparation: each is skipped and recorded in ``rejects.json`` with its reason. The
    cache is written to a temporary sibling folder and moved into place at the end, so a reader never sees a
    half-written cache.

    Args:
        msa_dir: folder of MSAs named ``{entry}_{auth_chain}/`` or ``{entry}_{auth_chain}.a3m|.sto[.gz]``.
        splits: entry id -> ``"train"``/``"val"``; entries not listed use :func:`hash_split`.
        predicted, plddt_min: read pLDDT from B-factors and mask residues below ``plddt_min``.
        max_msa_rows: rows kept per example (query first, duplicates dropped).

    Raises:
        DataPathError: ``src_dir`` (or ``msa_dir``) is not a folder, or holds no structure file.
    """
    src_dir, cache_dir = Path(src_dir), Path(cache_dir)
    if not src_dir.is_dir():
        raise DataPathError(src_dir, "expected a folder of structure files (.cif/.pdb, optionally .gz)")
    if msa_dir is not None and not Path(msa_dir).is_dir():
        raise DataPathError(msa_dir, "expected a folder of MSAs")
    files = sorted(
        p for p in src_dir.rglob("*") if is_structure_file(p) and "msas" not in p.parts[len(src_dir.parts) :]
    )
    if not files:
        raise DataPathError(src_dir, "no structure files (.cif/.mmcif/.pdb/.ent, optionally .gz) found")
    opts = {
        "predicted": predicted,
        "plddt_min": plddt_min,
        "max_msa_rows": max_msa_rows,
        "drop_crystallization_aids": drop_crystallization_aids,
    }
    tmp = cache_dir.with_name(f".{cache_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "examples").mkdir(parents=True)
    report = PrepareReport(str(cache_dir))
    seen: set[str] = set()
    jobs = [(p, None if msa_dir is None else str(msa_dir), opts) for p in files]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_prepare_one, jobs, chunksize=4))
    else:
        results = map(_prepare_one, jobs)
    for (path, _, _), (record, rejects, arrays) in zip(jobs, results, strict=True):
        report.rejects += rejects
        if record is None:
            continue
        if record["entry_id"] in seen:
            report.rejects.append(
                {
                    "path": str(path),
                    "kind": "duplicate",
                    "reason": f"entry id {record['entry_id']} already prepared from another file",
                }
            )
            continue
        seen.add(record["entry_id"])
        record["split"] = (splits or {}).get(record["entry_id"]) or hash_split(
            record["entry_id"], val_fraction
        )
        np.savez_compressed(tmp / "examples" / f"{record['entry_id']}.npz", **arrays)
        report.kept.append(record)
    index = {
        "version": CACHE_VERSION,
        "source": str(src_dir),
        "msa_dir": None if msa_dir is None else str(msa_dir),
        "settings": opts,
        "entries": report.kept,
    }
    (tmp / INDEX).write_text(json.dumps(index, indent=1))
    (tmp / REJECTS).write_text(json.dumps(report.rejects, indent=1))
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(cache_dir)
    return report


def load_index(cache_dir: str | Path) -> dict:
    """The ``index.json`` of a cache; DataPathError if ``cache_dir`` is not a cache of this version."""
    path = Path(cache_dir) / INDEX
    if not path.is_file():
        raise DataPathError(cache_dir, f"not a feature cache (no {INDEX}); run `harness data prepare` first")
    index = json.loads(path.read_text())
    if index.get("version") != CACHE_VERSION:
        raise DataPathError(
            cache_dir, f"cache version {index.get('version')}, expected {CACHE_VERSION}; re-prepare"
        )
    return index


def load_example(cache_dir: str | Path, entry_id: str) -> dict[str, np.ndarray]:
    with np.load(Path(cache_dir) / "examples" / f"{entry_id}.npz") as data:
        return {k: data[k] for k in data.files}


def report_dict(report: PrepareReport) -> dict:
    return asdict(report)
