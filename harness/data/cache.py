"""Preprocessed feature cache: parse + filter + tokenise + MSA once, so training never reads mmCIF.

Layout of a cache folder (version 2)::

    plan.json            inputs per shard and every setting; a rerun with the same plan resumes
    shards/00000.npz     examples of shard 0 (members ``{entry}/{array}.npy``, see ``shards.py``)
    shards/00000.json    its records and rejects; written last, so its presence marks the shard done
    entries.arrow, chains.arrow, interfaces.arrow    the columnar index (``index.py``)
    rejects.json         one record per skipped input: path, kind (parse, unknown_ccd, msa, release_date,
                         error, ...), reason
    manifest.json        sources, settings, filters, tool versions, clustering method and counts; written
                         last of all, so its presence marks the cache complete

Preparation is resumable and safe to start on several processes or nodes at once over one shared folder:
every shard is written by whoever holds its ``flock`` and renamed into place, finished shards are skipped,
a shard whose writer was killed is redone, and nothing that exists is ever deleted (except with
``overwrite=True``). The arrays of one example are ``tokenize.Tokens.arrays`` plus msa (S, N) int8,
msa_mask (S, N) bool, deletions (S, N) int32, profile (N, 32) float32, deletion_mean (N,) float32.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.data.clusters import one_letter
from harness.data.constants import LIGAND, PROTEIN
from harness.data.errors import DataPathError, RecordError
from harness.data.filters import FilterConfig, apply_filters
from harness.data.index import column, read_table
from harness.data.msa import chain_msa, example_msa, msa_files_for
from harness.data.parse import read_structure
from harness.data.shards import ShardReader
from harness.data.tokenize import tokenize

CACHE_VERSION = 2
MANIFEST = "manifest.json"
PLAN = "plan.json"
REJECTS = "rejects.json"
SHARDS = "shards"


@dataclass
class PrepareReport:
    """What ``prepare`` did: the cache, its counts, and every skipped input with its reason.
    ``kept`` reads the entries back from the index on access (it is not held during preparation)."""

    cache_dir: str
    counts: dict = field(default_factory=dict)
    rejects: list[dict] = field(default_factory=list)

    @property
    def kept(self) -> list[dict]:
        return load_index(self.cache_dir)["entries"]


def is_cache(path: Path) -> bool:
    """A complete cache of this version (its manifest is written last)."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    return json.loads(manifest.read_text()).get("version") == CACHE_VERSION


def prepared_msa_rows(path: str | Path) -> int | None:
    """MSA rows per example that the prepared cache at ``path`` keeps (None: not a complete cache)."""
    if not is_cache(Path(path)):
        return None
    settings = json.loads((Path(path) / MANIFEST).read_text()).get("settings", {})
    return int(settings["max_msa_rows"]) if "max_msa_rows" in settings else None


def build_example(
    path: str | Path,
    msa_dir: str | Path | None,
    *,
    predicted: bool = False,
    plddt_min: float | None = None,
    max_msa_rows: int = 1024,
    drop_crystallization_aids: bool = True,
    filters: FilterConfig | None = None,
):
    """Parse, filter, tokenise and attach MSAs: ``(structure, tokens, msa_rejects)``; ``tokens.arrays`` gains
    the MSA arrays. An MSA whose query disagrees with its chain is skipped (the entity stays query-only) and
    reported in ``msa_rejects``; a structure that cannot be used raises a ``RecordError`` naming the file
    (``FilteredError`` when a filter drops it)."""
    structure = read_structure(
        path, predicted=predicted, plddt_min=plddt_min, drop_crystallization_aids=drop_crystallization_aids,
        assembly=filters.bioassembly if filters is not None else None,
    )
    if filters is not None:
        structure = apply_filters(structure, filters)
    tokens = tokenize(structure)
    arrays = tokens.arrays
    rejects: list[dict] = []
    per_entity: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if msa_dir is not None:
        for chain in tokens.chains:
            if chain["mol_type"] == LIGAND or chain["entity_id"] in per_entity:
                continue
            sequence = one_letter("-".join(chain["sequence"])) if chain["mol_type"] == PROTEIN else None
            files = msa_files_for(Path(msa_dir), structure.entry_id, chain["auth_id"], sequence)
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
    filters: FilterConfig | None = None,
    source_name: str | None = None,
    shard_size: int = 64,
    workers: int = 1,
    executor: str = "local",
    slurm: dict | None = None,
    cluster_with_mmseqs: bool = True,
    overwrite: bool = False,
    progress: bool | None = None,
) -> PrepareReport:
    """Turn every structure file under ``src_dir`` (recursively: flat or PDB-mirror ``ab/1abc.cif.gz``
    layouts, AFDB/MGnify names) into a cache at ``cache_dir``; see the module docstring for the layout.

    Bad inputs never stop preparation: each is skipped and recorded with its reason, and so is an unexpected
    exception while preparing one file (kind ``error``). Rerunning on an unfinished cache resumes it.

    Args:
        msa_dir: folder of MSAs named ``{entry}_{auth_chain}/`` or ``{entry}_{auth_chain}.a3m|.sto[.gz]``.
        splits: entry id -> ``"train"``/``"val"``; entries not listed split by cluster
            (:func:`~harness.data.clusters.split_by_cluster`), so no cluster sits on both sides.
        predicted, plddt_min: read pLDDT from B-factors and mask residues below ``plddt_min``.
        max_msa_rows: rows kept per example (query first, duplicates dropped).
        filters: AF3 training filters (``FilterConfig``); None filters nothing.
        shard_size: input files per shard (the unit of resumption and of parallel work).
        workers: local processes (``executor="local"``); ``executor="slurm"`` runs the shards as a job array
            with ``slurm`` = ``{"array_tasks": n, **SlurmResources fields}``.
        overwrite: replace an existing cache planned from other inputs or settings (else DataPathError).

    Raises:
        DataPathError: ``src_dir`` (or ``msa_dir``) is not a folder or holds no structure file, or
            ``cache_dir`` holds a cache planned from different inputs and ``overwrite`` is False.
    """
    from harness.data.prepare import finalize, make_plan, run_pending

    cache_dir = Path(cache_dir)
    plan = make_plan(
        Path(src_dir),
        msa_dir=msa_dir,
        splits=splits,
        val_fraction=val_fraction,
        settings={
            "predicted": predicted,
            "plddt_min": plddt_min,
            "max_msa_rows": max_msa_rows,
            "drop_crystallization_aids": drop_crystallization_aids,
            "filters": (filters or FilterConfig()).model_dump(),
        },
        source_name=source_name,
        shard_size=shard_size,
        cluster_with_mmseqs=cluster_with_mmseqs,
    )
    existing = cache_dir / PLAN
    if existing.is_file() and json.loads(existing.read_text()) != plan:
        if not overwrite:
            raise DataPathError(
                cache_dir, "holds a cache planned from other inputs or settings; choose another folder or "
                "pass overwrite (--overwrite)"
            )
        shutil.rmtree(cache_dir)
    run_pending(cache_dir, plan, workers=workers, executor=executor, slurm=slurm, progress=progress)
    finalize(cache_dir, progress=progress)
    manifest = json.loads((cache_dir / MANIFEST).read_text())
    return PrepareReport(str(cache_dir), manifest["counts"], json.loads((cache_dir / REJECTS).read_text()))


def load_manifest(cache_dir: str | Path) -> dict:
    """The manifest of a complete cache; DataPathError if ``cache_dir`` is not one of this version."""
    path = Path(cache_dir) / MANIFEST
    if not path.is_file():
        raise DataPathError(cache_dir, f"not a feature cache (no {MANIFEST}); run `harness data prepare` first")
    manifest = json.loads(path.read_text())
    if manifest.get("version") != CACHE_VERSION:
        raise DataPathError(
            cache_dir, f"cache version {manifest.get('version')}, expected {CACHE_VERSION}; re-prepare"
        )
    return manifest


def load_index(cache_dir: str | Path) -> dict:
    """The manifest plus ``entries``: one dict per kept entry (for small caches and reports; training code
    reads the columnar tables through :class:`CacheIndex`)."""
    manifest = load_manifest(cache_dir)
    rows = read_table(Path(cache_dir) / "entries.arrow").to_pylist()
    for row in rows:
        row["mol_types"] = row["mol_types"].split(",") if row["mol_types"] else []
    return manifest | {"entries": rows}


class CacheIndex:
    """Columns of a cache's entry table as numpy arrays plus a lazy shard reader (picklable to workers)."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir)
        self.manifest = load_manifest(self.cache_dir)
        table = read_table(self.cache_dir / "entries.arrow")
        self.columns = {name: column(table, name) for name in table.column_names}
        self.reader = ShardReader(self.cache_dir / SHARDS)

    def __len__(self) -> int:
        return len(self.columns["entry_id"])

    def load(self, row: int) -> dict[str, np.ndarray]:
        return self.reader.load(int(self.columns["shard"][row]), str(self.columns["entry_id"][row]))


def load_example(cache_dir: str | Path, entry_id: str) -> dict[str, np.ndarray]:
    index = CacheIndex(cache_dir)
    rows = np.flatnonzero(index.columns["entry_id"] == entry_id)
    if not len(rows):
        raise KeyError(f"entry {entry_id!r} is not in the cache {cache_dir}")
    return index.load(int(rows[0]))
