"""Datasets over a prepared cache: cropped training examples and (large-crop) validation examples."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from harness.data.cache import CacheIndex
from harness.data.crop import crop
from harness.data.featurize import featurize
from harness.data.index import column, read_table


class CachedDataset(Dataset):
    """Examples of one cache, optionally restricted to a split.

    ``dataset[i]`` crops with a generator seeded by ``(seed, i)``; ``dataset.get(i, draw_seed)`` lets the
    mixture sampler choose a fresh crop per draw while staying deterministic.

    With ``units=True`` (AF3 sampling, SI §2.5.1) the mixture sampler draws *units* — the split's chains and
    interfaces, each with its AF3 weight from the cache index — and ``draw(u, seed)`` crops the unit's entry
    around that chain or interface. Otherwise a draw is an entry.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        split: str | None = None,
        crop_size: int = 384,
        max_atoms: int = 4608,
        cropper: dict[str, float] | None = None,
        max_msa_rows: int = 16,
        seed: int = 0,
        units: bool = False,
    ):
        self.cache_dir = Path(cache_dir)
        # Columns (numpy) of the entry table and a shard reader that opens shards lazily, per process.
        self.index = CacheIndex(self.cache_dir)
        columns = self.index.columns
        self.rows = np.flatnonzero(columns["split"] == split) if split is not None else np.arange(len(self.index))
        self.crop_size = crop_size
        self.max_atoms = max_atoms
        self.cropper = cropper or {"spatial": 1.0}
        self.max_msa_rows = max_msa_rows
        self.seed = seed
        self.units = units
        self._units: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def entry_ids(self) -> np.ndarray:
        return self.index.columns["entry_id"][self.rows]

    @property
    def entries(self) -> list[dict]:
        """One dict per example (materialised on access; prefer the columns for large caches)."""
        cols = self.index.columns
        return [{k: v[r] for k, v in cols.items()} for r in self.rows]

    @property
    def clusters(self) -> np.ndarray:
        """(len,) int cluster id per entry (its polymer chains' clusters, from the cache index)."""
        _, inverse = np.unique(self.index.columns["cluster"][self.rows], return_inverse=True)
        return inverse.reshape(-1).astype(np.int64)

    @property
    def sample_weights(self) -> np.ndarray:
        """(len,) float64 AF3 sampling weight per entry: the sum of its chain and interface weights."""
        return self.index.columns["weight"][self.rows].astype(np.float64)

    @property
    def unit_table(self) -> dict[str, np.ndarray]:
        """The split's sampling units: ``example`` (index into this dataset), ``asym_a``, ``asym_b`` (-1 for a
        chain unit) and ``weight``, chains first, then interfaces. Read once from the memory-mapped index."""
        if self._units is None:
            position = np.full(len(self.index), -1, dtype=np.int64)
            position[self.rows] = np.arange(len(self.rows))
            parts = []
            for name, a, b in (("chains", "asym_id", None), ("interfaces", "asym_a", "asym_b")):
                table = read_table(self.cache_dir / f"{name}.arrow")
                if table.num_rows == 0:
                    continue
                example = position[column(table, "entry").astype(np.int64)]
                keep = example >= 0
                parts.append({
                    "example": example[keep],
                    "asym_a": column(table, a).astype(np.int64)[keep],
                    "asym_b": column(table, b).astype(np.int64)[keep] if b else np.full(keep.sum(), -1, np.int64),
                    "weight": column(table, "weight").astype(np.float64)[keep],
                })
            self._units = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
                           for k in ("example", "asym_a", "asym_b", "weight")}
        return self._units

    @property
    def n_draws(self) -> int:
        """Size of the sampler's index space: units with ``units=True``, else entries."""
        return len(self.unit_table["example"]) if self.units else len(self)

    @property
    def draw_weights(self) -> np.ndarray:
        """(n_draws,) AF3 sampling weights: per unit, or per entry (sum of its units) without ``units``."""
        return self.unit_table["weight"] if self.units else self.sample_weights

    def draw(self, index: int, draw_seed: int) -> dict:
        """The sampler's draw ``index``: a unit cropped around its chain/interface, or an entry."""
        if not self.units:
            return self.get(index, draw_seed)
        t = self.unit_table
        focus = (int(t["asym_a"][index]),) if t["asym_b"][index] < 0 else (int(t["asym_a"][index]),
                                                                            int(t["asym_b"][index]))
        return self.get(int(t["example"][index]), draw_seed, focus=focus)

    def get(self, index: int, draw_seed: int, focus: tuple[int, ...] | None = None) -> dict:
        row = int(self.rows[index])
        arrays = self.index.load(row)
        rng = np.random.default_rng(draw_seed)
        tokens = crop(arrays, self.crop_size, self.max_atoms, self.cropper, rng, focus=focus)
        example = featurize(arrays, tokens, self.max_msa_rows, rng)
        example["entry_id"] = str(self.index.columns["entry_id"][row])
        return example

    def __getitem__(self, index: int) -> dict:
        # Keyed by the entry id, not its position: the fixed validation crop of an entry stays the same
        # when other entries join or leave the split.
        entry_id = self.entries[index]["entry_id"]
        return self.get(index, (zlib.crc32(entry_id.encode()) + 1_000_003 * self.seed) & 0x7FFFFFFF)


class MixtureDataset(Dataset):
    """Several named datasets behind one index space of ``(dataset, example, draw_seed)`` keys."""

    def __init__(self, datasets: dict[str, CachedDataset]):
        self.names = list(datasets)
        self.datasets = list(datasets.values())

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        d, i, draw_seed = key
        example = self.datasets[d].draw(i, draw_seed)
        example["dataset"] = self.names[d]
        return example
