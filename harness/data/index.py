"""The columnar index of a cache: three Arrow IPC tables, memory-mapped on open (no parse, no copy).

``entries.arrow``     one row per kept entry: entry_id, shard, source, n_tokens, n_atoms, n_resolved_atoms,
                      n_chains, msa_depth, mol_types (comma-joined), release_date, resolution, split,
                      cluster (hash of the entry's polymer-chain clusters), weight (AF3: sum of its chain and
                      interface weights)
``chains.arrow``      one row per chain: entry (row in entries), asym_id, auth_id, entity_id, mol_type,
                      length, cluster, weight
``interfaces.arrow``  one row per chain pair in contact (heavy atoms within 5 Å): entry, asym_a, asym_b,
                      cluster_a, cluster_b, weight
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from harness.data.shards import tmp_name

TABLES = ("entries", "chains", "interfaces")


def write_table(path: Path, columns: dict[str, list | np.ndarray]) -> None:
    table = pa.table({k: pa.array(v) if not isinstance(v, pa.Array) else v for k, v in columns.items()})
    tmp = tmp_name(path)
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    tmp.replace(path)


def read_table(path: Path) -> pa.Table:
    """The table at ``path``, memory-mapped: columns are paged in from disk as they are read."""
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)
