"""Counts and length distributions of a prepared cache (``harness data stats``), read from its columnar index."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from harness.data.cache import REJECTS, load_manifest
from harness.data.index import column, read_table


def cache_stats(cache_dir: str | Path) -> dict:
    """Summary of a cache: entries per split / molecule type, token/atom/MSA-depth quantiles, clusters,
    reject kinds (each drop counted by reason)."""
    cache_dir = Path(cache_dir)
    manifest = load_manifest(cache_dir)
    entries = read_table(cache_dir / "entries.arrow")
    chains = read_table(cache_dir / "chains.arrow")
    rejects = json.loads((cache_dir / REJECTS).read_text())

    def quantiles(key: str) -> dict[str, float]:
        values = column(entries, key).astype(np.float64)
        if not len(values):
            return {}
        q = np.quantile(values, [0.0, 0.5, 0.9, 1.0])
        return {"min": q[0], "median": q[1], "p90": q[2], "max": q[3], "total": values.sum()}

    mol_types = Counter(t for joined in column(entries, "mol_types") for t in str(joined).split(",") if t)
    return {
        "entries": entries.num_rows,
        "splits": dict(Counter(column(entries, "split").tolist())),
        "molecule_types": dict(mol_types),
        "clusters": len(set(column(entries, "cluster").tolist())),
        "chain_clusters": len(set(column(chains, "cluster").tolist())),
        "clustering": manifest["clustering"]["protein"],
        "shards": manifest["counts"]["shards"],
        "with_msa": int((column(entries, "msa_depth") > 1).sum()),
        "n_tokens": quantiles("n_tokens"),
        "n_atoms": quantiles("n_atoms"),
        "msa_depth": quantiles("msa_depth"),
        "rejects": dict(Counter(r["kind"] for r in rejects)),
    }
