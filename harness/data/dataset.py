"""Datasets over a prepared cache: cropped training examples and (large-crop) validation examples."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from harness.data.cache import load_example, load_index
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
        index = load_index(self.cache_dir)
        self.entries = [e for e in index["entries"] if split is None or e["split"] == split]
        self.crop_size = crop_size
        self.max_atoms = max_atoms
        self.cropper = cropper or {"spatial": 1.0}
        self.max_msa_rows = max_msa_rows
        self.seed = seed

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def clusters(self) -> np.ndarray:
        """(len,) int cluster id per entry (exact-sequence clusters from the cache index)."""
        keys = {k: i for i, k in enumerate(dict.fromkeys(e["cluster"] for e in self.entries))}
        return np.array([keys[e["cluster"]] for e in self.entries], dtype=np.int64)

    def get(self, index: int, draw_seed: int) -> dict:
        entry = self.entries[index]
        arrays = load_example(self.cache_dir, entry["entry_id"])
        rng = np.random.default_rng(draw_seed)
        tokens = crop(arrays, self.crop_size, self.max_atoms, self.cropper, rng)
        example = featurize(arrays, tokens, self.max_msa_rows, rng)
        example["entry_id"] = entry["entry_id"]
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
        example = self.datasets[d].get(i, draw_seed)
        example["dataset"] = self.names[d]
        return example
