"""Counts and length distributions of a prepared cache (``harness data stats``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from harness.data.cache import REJECTS, load_index


def cache_stats(cache_dir: str | Path) -> dict:
    """Summary of a cache: entries per split / molecule type, token/atom/MSA-depth quantiles, reject kinds."""
    index = load_index(cache_dir)
    entries = index["entries"]
    rejects_path = Path(cache_dir) / REJECTS
    rejects = json.loads(rejects_path.read_text()) if rejects_path.is_file() else []

    def quantiles(key: str) -> dict[str, float]:
        values = np.array([e[key] for e in entries], dtype=np.float64)
        if not len(values):
            return {}
        q = np.quantile(values, [0.0, 0.5, 0.9, 1.0])
        return {"min": q[0], "median": q[1], "p90": q[2], "max": q[3], "total": values.sum()}

    return {
        "entries": len(entries),
        "splits": dict(Counter(e["split"] for e in entries)),
        "molecule_types": dict(Counter(t for e in entries for t in e["mol_types"])),
        "clusters": len({e["cluster"] for e in entries}),
        "with_msa": sum(e["msa_depth"] > 1 for e in entries),
        "n_tokens": quantiles("n_tokens"),
        "n_atoms": quantiles("n_atoms"),
        "msa_depth": quantiles("msa_depth"),
        "rejects": dict(Counter(r["kind"] for r in rejects)),
    }
