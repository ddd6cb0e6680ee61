"""The engine behind ``cache.prepare``: plan shards, run them (local processes or a SLURM job array),
finalize the columnar index, clusters, weights, split and manifest.

Memory stays flat in the number of entries while shards run: each shard streams its examples into its own
file and returns only counts. ``finalize`` holds per-entry metadata (a few hundred bytes each) to cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.data.cache_layout import CACHE_VERSION, MANIFEST, PLAN, REJECTS, SHARDS
from harness.data.clusters import (
    chain_weights,
    cluster_chains,
    interface_weights,
    mmseqs_version,
    sequence_hash,
    split_by_cluster,
)
from harness.data.constants import LIGAND, MOL_TYPE_NAMES
from harness.data.errors import DataPathError, RecordError
from harness.data.example import build_example
from harness.data.filters import FilterConfig
from harness.data.index import write_table
from harness.data.parse import is_structure_file
from harness.data.shards import ShardWriter, atomic_write_json, file_lock

INTERFACE_DISTANCE = 5.0  # Å between heavy atoms of two chains (AF3 SI §2.5.1)


def _progress(enabled: bool | None) -> Progress:
    enabled = sys.stderr.isatty() if enabled is None else enabled
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=False)


def _layout(src: Path, files: list[Path]) -> str:
    """``divided`` (PDB mirror ``ab/1abc.cif.gz``), ``flat``, or ``nested`` (any other sub-folders)."""
    parents = {f.parent for f in files}
    if parents == {src}:
        return "flat"
    if all(len(p.name) == 2 and p.parent == src for p in parents):
        return "divided"
    return "nested"


def make_plan(src: Path, *, msa_dir, splits, val_fraction, settings, source_name, shard_size,
              cluster_with_mmseqs) -> dict:
    """Every input of a preparation, shard by shard; two preparations resume each other iff plans match."""
    if not src.is_dir():
        raise DataPathError(src, "expected a folder of structure files (.cif/.pdb, optionally .gz)")
    if msa_dir is not None and not Path(msa_dir).is_dir():
        raise DataPathError(msa_dir, "expected a folder of MSAs")
    files = sorted(p for p in src.rglob("*") if is_structure_file(p) and "msas" not in p.parts[len(src.parts):])
    if not files:
        raise DataPathError(src, "no structure files (.cif/.mmcif/.pdb/.ent, optionally .gz) found")
    names = [str(p) for p in files]
    return {
        "version": CACHE_VERSION,
        "source": {"name": source_name, "path": str(src.resolve()), "layout": _layout(src, files),
                   "files": len(files)},
        "msa_dir": None if msa_dir is None else str(msa_dir),
        "settings": settings,
        "splits": splits,
        "val_fraction": val_fraction,
        "cluster_with_mmseqs": cluster_with_mmseqs,
        "shards": [names[i : i + shard_size] for i in range(0, len(names), shard_size)],
    }


def _shard_done(shards: Path, k: int) -> bool:
    return (shards / f"{k:05d}.json").is_file() and (shards / f"{k:05d}.npz").is_file()


def _interfaces(arrays: dict[str, np.ndarray]) -> list[list[int]]:
    """Asym-id pairs (a < b) of chains with resolved heavy atoms within INTERFACE_DISTANCE."""
    from scipy.spatial import cKDTree

    mask = arrays["gt_atom_mask"].astype(bool)
    chain = arrays["asym_id"][arrays["atom_to_token"][mask]]
    if len(np.unique(chain)) < 2:
        return []
    pairs = cKDTree(arrays["gt_coords"][mask]).query_pairs(INTERFACE_DISTANCE, output_type="ndarray")
    a, b = chain[pairs[:, 0]], chain[pairs[:, 1]]
    cross = a != b
    both = np.unique(np.sort(np.stack([a[cross], b[cross]], axis=1), axis=1), axis=0)
    return both.astype(int).tolist()


def _record(structure, tokens, path: str) -> dict:
    arrays = tokens.arrays
    return {
        "entry_id": structure.entry_id,
        "source": path,
        "n_tokens": tokens.n_tokens,
        "n_atoms": tokens.n_atoms,
        "n_resolved_atoms": int(arrays["gt_atom_mask"].sum()),
        "n_chains": len(tokens.chains),
        "msa_depth": int(arrays["msa"].shape[0]),
        "mol_types": sorted({MOL_TYPE_NAMES[c["mol_type"]] for c in tokens.chains}),
        "release_date": structure.meta.get("release_date"),
        "resolution": structure.meta.get("resolution"),
        "chains": [
            {k: c[k] for k in ("asym_id", "auth_id", "entity_id", "mol_type")}
            | {"length": len(c["sequence"]), "sequence": "-".join(c["sequence"])}
            for c in tokens.chains
        ],
        "interfaces": _interfaces(arrays),
    }


def run_shard(cache_dir: str | Path, k: int) -> str:
    """Prepare shard ``k`` of the plan in ``cache_dir``: ``"done"``, ``"skipped"`` (already done) or ``"busy"``
    (another process holds it). Every file's failure, expected or not, becomes a reject."""
    cache_dir = Path(cache_dir)
    plan = json.loads((cache_dir / PLAN).read_text())
    shards = cache_dir / SHARDS
    with file_lock(shards / f"{k:05d}.lock", blocking=False) as mine:
        if not mine:
            return "busy"
        if _shard_done(shards, k):
            return "skipped"
        for stale in shards.glob(f".{k:05d}.*.tmp-*"):  # left by a killed writer of this shard
            stale.unlink(missing_ok=True)
        settings = dict(plan["settings"])
        settings["filters"] = FilterConfig(**settings["filters"])
        writer = ShardWriter(shards / f"{k:05d}.npz")
        records, rejects, seen = [], [], set()
        try:
            for path in plan["shards"][k]:
                try:
                    structure, tokens, msa_rejects = build_example(path, plan["msa_dir"], **settings)
                    record = _record(structure, tokens, path)
                except RecordError as exc:
                    rejects.append({"path": exc.path, "kind": exc.kind, "reason": exc.reason})
                    continue
                except Exception as exc:  # noqa: BLE001 - one file's bug must not stop a 200k-file run
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    rejects.append({"path": path, "kind": "error", "reason": f"{type(exc).__name__}: {exc} "
                                    f"(at {Path(where.filename).name}:{where.lineno})"})
                    continue
                rejects += msa_rejects
                if record["entry_id"] in seen:
                    rejects.append({"path": path, "kind": "duplicate",
                                    "reason": f"entry id {record['entry_id']} already prepared from another file"})
                    continue
                seen.add(record["entry_id"])
                writer.add(record["entry_id"], tokens.arrays)
                records.append(record)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        atomic_write_json(shards / f"{k:05d}.json", {"records": records, "rejects": rejects})
    return "done"


def run_shards(cache_dir: str, ks: list[int]) -> list[str]:
    """One SLURM array task's work: several shards in turn."""
    return [run_shard(cache_dir, k) for k in ks]


def _submit_slurm(cache_dir: Path, pending: list[int], slurm: dict) -> None:
    from harness.dispatch.executor import slurm_executor
    from harness.dispatch.resources import SlurmResources

    options = dict(slurm)
    tasks = max(1, min(int(options.pop("array_tasks", 4)), len(pending)))
    resources = SlurmResources(**({"time_min": 60} | options))
    folder = cache_dir / "slurm" / time.strftime("%Y%m%d-%H%M%S")
    executor = slurm_executor(folder, resources, name=f"prepare-{cache_dir.name}")
    chunks = [pending[i::tasks] for i in range(tasks)]
    jobs = executor.map_array(run_shards, [str(cache_dir)] * tasks, chunks)
    for job in jobs:
        job.result()  # raises with the job's log tail if a task failed


def run_pending(cache_dir: Path, plan: dict, *, workers: int, executor: str, slurm: dict | None,
                progress: bool | None) -> None:
    """Write the plan (atomically; identical from every starter) and run every shard not yet done."""
    (cache_dir / SHARDS).mkdir(parents=True, exist_ok=True)
    if not (cache_dir / PLAN).is_file():
        atomic_write_json(cache_dir / PLAN, plan)
    shards = cache_dir / SHARDS
    pending = [k for k in range(len(plan["shards"])) if not _shard_done(shards, k)]
    if (cache_dir / MANIFEST).is_file() or not pending:
        return
    if executor == "slurm":
        _submit_slurm(cache_dir, pending, slurm or {})
    elif executor != "local":
        raise ValueError(f"executor must be 'local' or 'slurm', got {executor!r}")
    with _progress(progress) as bar:
        task = bar.add_task(f"prepare {plan['source']['path']}", total=len(plan["shards"]))
        bar.advance(task, len(plan["shards"]) - len(pending))
        busy = []
        if workers > 1 and len(pending) > 1:
            with ProcessPoolExecutor(min(workers, len(pending))) as pool:
                futures = {pool.submit(run_shard, str(cache_dir), k): k for k in pending}
                for future in as_completed(futures):
                    if future.result() == "busy":
                        busy.append(futures[future])
                    else:
                        bar.advance(task)
        else:
            for k in pending:
                if run_shard(cache_dir, k) == "busy":
                    busy.append(k)
                else:
                    bar.advance(task)
        # Shards another process was writing: wait for its lock; redo the shard if that process died.
        for k in busy:
            with file_lock(shards / f"{k:05d}.lock"):
                pass
            run_shard(cache_dir, k)
            bar.advance(task)


def _versions() -> dict:
    out = {"python": platform.python_version(), "mmseqs": mmseqs_version()}
    for pkg in ("gemmi", "biotite", "numpy", "pyarrow", "seedfold-harness"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def finalize(cache_dir: Path, *, progress: bool | None = None) -> None:
    """Merge the shards into the index, cluster chains, weight them, split by cluster, write the manifest.
    Under a lock; a no-op when the manifest exists (someone else finished)."""
    with file_lock(cache_dir / "finalize.lock"):
        if (cache_dir / MANIFEST).is_file():
            return
        plan = json.loads((cache_dir / PLAN).read_text())
        shards = cache_dir / SHARDS
        missing = [k for k in range(len(plan["shards"])) if not _shard_done(shards, k)]
        if missing:
            raise DataPathError(cache_dir, f"shards {missing[:5]} not prepared; rerun the preparation")
        entries: dict[str, list] = {k: [] for k in ("entry_id", "shard", "source", "n_tokens", "n_atoms",
                                                      "n_resolved_atoms", "n_chains", "msa_depth", "mol_types",
                                                      "release_date", "resolution")}
        chains: dict[str, list] = {k: [] for k in ("entry", "asym_id", "auth_id", "entity_id", "mol_type",
                                                     "length", "sequence")}
        interfaces: dict[str, list] = {"entry": [], "asym_a": [], "asym_b": []}
        rejects, seen = [], set()
        with _progress(progress) as bar:
            for k in bar.track(range(len(plan["shards"])), description="index shards"):
                shard = json.loads((shards / f"{k:05d}.json").read_text())
                rejects += shard["rejects"]
                for rec in shard["records"]:
                    if rec["entry_id"] in seen:
                        rejects.append({"path": rec["source"], "kind": "duplicate", "reason":
                                        f"entry id {rec['entry_id']} already prepared from another file"})
                        continue
                    seen.add(rec["entry_id"])
                    row = len(entries["entry_id"])
                    for key in entries:
                        entries[key].append(k if key == "shard" else
                                            ",".join(rec[key]) if key == "mol_types" else rec[key])
                    for c in rec["chains"]:
                        chains["entry"].append(row)
                        for key in ("asym_id", "auth_id", "entity_id", "mol_type", "length", "sequence"):
                            chains[key].append(c[key])
                    for a, b in rec["interfaces"]:
                        interfaces["entry"].append(row)
                        interfaces["asym_a"].append(a)
                        interfaces["asym_b"].append(b)
        method = _cluster_and_split(entries, chains, interfaces, plan)
        sequences = chains.pop("sequence")
        chains["sequence_hash"] = [sequence_hash(s) for s in sequences]
        write_table(cache_dir / "entries.arrow", entries)
        write_table(cache_dir / "chains.arrow", chains)
        write_table(cache_dir / "interfaces.arrow", interfaces)
        atomic_write_json(cache_dir / REJECTS, rejects)
        splits = Counter(entries["split"])
        manifest = {
            "version": CACHE_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": plan["source"],
            "msa_dir": plan["msa_dir"],
            "settings": plan["settings"],
            "split": {"fixed": plan["splits"] is not None, "val_fraction": plan["val_fraction"],
                      "method": method.pop("split")},
            "clustering": method,
            "tools": _versions(),
            "counts": {
                "inputs": plan["source"]["files"],
                "shards": len(plan["shards"]),
                "entries": len(entries["entry_id"]),
                "chains": len(chains["entry"]),
                "interfaces": len(interfaces["entry"]),
                "splits": dict(sorted(splits.items())),
                "rejects": dict(sorted(Counter(r["kind"] for r in rejects).items())),
                "chain_clusters": len(set(chains["cluster"])),
                "split_leaking_clusters": method.pop("leaking_clusters"),
            },
        }
        atomic_write_json(cache_dir / MANIFEST, manifest)


def _cluster_and_split(entries: dict, chains: dict, interfaces: dict, plan: dict) -> dict:
    """Adds cluster/weight columns to the three tables and ``split`` to entries; returns the methods used."""
    mol_type = np.array(chains["mol_type"], dtype=np.int64)
    keys, method = cluster_chains(chains["sequence"], mol_type, threads=os.cpu_count() or 1,
                                  use_mmseqs=plan["cluster_with_mmseqs"])
    chains["cluster"] = keys
    codes, cluster_index = np.unique(np.array(keys, dtype=object), return_inverse=True)
    cluster_index = cluster_index.reshape(-1)
    chains["weight"] = chain_weights(cluster_index, mol_type)
    entry_of_chain = np.array(chains["entry"], dtype=np.int64)
    # asym ids are 1-based chain positions within an entry: the chain row is the entry's first row + asym - 1.
    first_row = np.searchsorted(entry_of_chain, np.arange(len(entries["entry_id"])))
    iface_entry = np.array(interfaces["entry"], dtype=np.int64)
    row_a = first_row[iface_entry] + np.array(interfaces["asym_a"], dtype=np.int64) - 1
    row_b = first_row[iface_entry] + np.array(interfaces["asym_b"], dtype=np.int64) - 1
    interfaces["cluster_a"] = [keys[i] for i in row_a]
    interfaces["cluster_b"] = [keys[i] for i in row_b]
    interfaces["weight"] = interface_weights(
        np.stack([cluster_index[row_a], cluster_index[row_b]], axis=1).reshape(-1, 2),
        np.stack([mol_type[row_a], mol_type[row_b]], axis=1).reshape(-1, 2))
    n = len(entries["entry_id"])
    weight = np.bincount(entry_of_chain, weights=chains["weight"], minlength=n)
    weight += np.bincount(iface_entry, weights=interfaces["weight"], minlength=n)
    entries["weight"] = weight
    polymer = mol_type != LIGAND
    polymer_keys = [k if p else "" for k, p in zip(keys, polymer, strict=True)]
    entries["cluster"] = [
        hashlib.sha256("|".join(sorted(set(polymer_keys[first_row[e] : first_row[e] + c]) - {""})).encode())
        .hexdigest()[:16]
        for e, c in enumerate(entries["n_chains"])
    ]
    val = split_by_cluster(entry_of_chain[polymer], cluster_index[polymer], list(codes), entries["entry_id"],
                           plan["val_fraction"])
    fixed = plan["splits"] or {}
    split = [fixed.get(e) or ("val" if v else "train") for e, v in zip(entries["entry_id"], val, strict=True)]
    entries["split"] = split
    side = np.array([s == "val" for s in split])
    in_val = set(cluster_index[polymer][side[entry_of_chain[polymer]]].tolist())
    in_train = set(cluster_index[polymer][~side[entry_of_chain[polymer]]].tolist())
    method["split"] = ("fixed where given, else by cluster" if fixed else
                       "by cluster: no polymer-chain cluster on both sides")
    method["leaking_clusters"] = len(in_val & in_train)
    return method
