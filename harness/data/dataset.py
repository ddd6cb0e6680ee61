"""Datasets over a prepared cache: cropped training examples and (large-crop) validation examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from harness.data.cache import CacheIndex
from harness.data.crop import crop
from harness.data.featurize import featurize


class CachedDataset(Dataset):
    """Examples of one cache, optionally restricted to a split.

    ``dataset[i]`` crops with a generator seeded by ``(seed, i)``; ``dataset.get(i, draw_seed)`` lets the
    mixture sampler choose a fresh crop per draw while staying deterministic.
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

    def get(self, index: int, draw_seed: int) -> dict:
        row = int(self.rows[index])
        arrays = self.index.load(row)
        rng = np.random.default_rng(draw_seed)
        tokens = crop(arrays, self.crop_size, self.max_atoms, self.cropper, rng)
        example = featurize(arrays, tokens, self.max_msa_rows, rng)
        example["entry_id"] = str(self.index.columns["entry_id"][row])
        return example

    def __getitem__(self, index: int) -> dict:
        return self.get(index, hash((self.seed, index)) & 0x7FFFFFFF)


class MixtureDataset(Dataset):
    """Several named datasets behind one index space of ``(dataset, example, draw_seed)`` keys."""

    def __init__(self, datasets: dict[str, CachedDataset]):
        self.names = list(datasets)
        self.datasets = list(datasets.values())

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        d, i, draw_seed = key
        example = self.datasets[d].get(i, draw_seed)
        example["dataset"] = self.names[d]
        return example
