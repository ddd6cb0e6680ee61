"""``StructureDataModule``: training batches from the weighted dataset mixture, validation from a val split.

Training: ``MixtureSampler`` -> ``MixtureDataset`` (crop + MSA subsample per draw) -> ``collate`` (padding).
Validation: the 'val' entries of the first dataset with ``validate_on``, uncropped up to ``val_max_tokens``
(one fixed spatial crop and MSA subsample per entry, drawn from ``val_seed``; harness/train/validation.py).
Structure folders (and the bundled starter set) are prepared into a cache on first use, on rank 0
(``prepare_data``). With DDP set ``Trainer(use_distributed_sampler=False)``: the sampler shards by rank.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from harness.data.cache import CACHE_VERSION, is_cache, prepare
from harness.data.collate import collate
from harness.data.config import DataConfig, DatasetSpec
from harness.data.dataset import CachedDataset, MixtureDataset
from harness.data.errors import DataPathError
from harness.data.mixing import MixtureSampler
from harness.data.starter import starter_dir, starter_splits

DEFAULT_CACHE_ROOT = Path.home() / ".cache" / "seedfold-harness"


def cache_path_for(spec: DatasetSpec, config: DataConfig, cache_root: Path) -> Path:
    """Where a structure folder's cache goes: keyed by its absolute path and the preparation settings."""
    if spec.path is not None and is_cache(spec.path):
        return Path(spec.path)
    src = starter_dir() if spec.path is None else Path(spec.path).resolve()
    if spec.path is None:
        fingerprint = (src / "manifest.json").read_bytes()
    else:
        fingerprint = str(src).encode()
    settings = json.dumps(
        [
            CACHE_VERSION,
            spec.predicted,
            spec.plddt_min,
            str(spec.msa_dir),
            config.max_msa_rows_cached,
            config.drop_crystallization_aids,
            config.val_fraction,
            spec.filters.model_dump(),
        ]
    ).encode()
    key = hashlib.sha256(fingerprint + settings).hexdigest()[:12]
    return cache_root / f"{'starter' if spec.path is None else spec.name}-{key}"


def ensure_cache(spec: DatasetSpec, config: DataConfig, cache_root: Path) -> Path:
    """Prepare ``spec`` into its cache unless that cache exists already; returns the cache folder.

    Safe when several nodes call it on one shared ``cache_root`` at once: preparation locks each shard and
    the final merge, renames every file into place, and never deletes what another node wrote."""
    target = cache_path_for(spec, config, cache_root)
    if is_cache(target):
        return target
    if spec.path is None:
        src, msa_dir, splits = starter_dir(), starter_dir() / "msas", starter_splits()
    else:
        src = Path(spec.path)
        if not src.is_dir():
            raise DataPathError(src, f"dataset {spec.name!r}: expected a cache or a folder of structures")
        msa_dir, splits = spec.msa_dir, None
    prepare(
        src,
        target,
        msa_dir=msa_dir,
        splits=splits,
        val_fraction=config.val_fraction,
        predicted=spec.predicted,
        plddt_min=spec.plddt_min,
        max_msa_rows=config.max_msa_rows_cached,
        drop_crystallization_aids=config.drop_crystallization_aids,
        filters=spec.filters,
        source_name=spec.name,
    )
    return target


class StructureDataModule(L.LightningDataModule):
    """Lightning data module over ``config`` (see ``DataConfig``); batches are dicts of padded FEATURES."""

    def __init__(self, config: DataConfig, *, seed: int, val_seed: int = 0, cache_dir: str | Path | None = None):
        super().__init__()
        self.config = config
        self.seed = seed
        # The validation set's crops and MSA rows are drawn from val_seed, not the run's seed: every run of a
        # sweep (and every seed) is scored on the same fixed examples.
        self.val_seed = val_seed
        self.cache_root = Path(cache_dir or config.cache_dir or DEFAULT_CACHE_ROOT)
        self.train_set: MixtureDataset | None = None
        self.val_set: CachedDataset | None = None
        self.train_probe_set: CachedDataset | None = None
        self._sampler: MixtureSampler | None = None

    def prepare_data(self) -> None:
        for spec in self.config.resolved_datasets():
            ensure_cache(spec, self.config, self.cache_root)

    def setup(self, stage: str | None = None) -> None:
        cfg = self.config
        specs = cfg.resolved_datasets()
        caches = {s.name: ensure_cache(s, cfg, self.cache_root) for s in specs}
        train = {
            s.name: CachedDataset(
                caches[s.name],
                split="train",
                crop_size=cfg.crop_size,
                max_atoms=cfg.atom_budget,
                cropper=cfg.cropper,
                max_msa_rows=cfg.max_msa_rows,
                seed=self.seed,
                units=s.sampling == "af3",
            )
            for s in specs
        }
        self.train_set = MixtureDataset(train)
        self._sampler = MixtureSampler(
            sizes=[d.n_draws for d in train.values()],
            weights=[s.weight for s in specs],
            clusters=[train[s.name].clusters if s.sampling == "cluster" else None for s in specs],
            example_weights=[train[s.name].draw_weights if s.sampling == "af3" else None for s in specs],
            samples_per_epoch=cfg.samples_per_epoch,
            seed=self.seed,
        )
        val_specs = [s for s in specs if s.validate_on]
        if val_specs:
            def fixed_crops(split: str) -> CachedDataset:
                return CachedDataset(caches[val_specs[0].name], split=split, crop_size=cfg.val_max_tokens,
                                     max_atoms=cfg.val_max_atoms, cropper={"spatial": 1.0},
                                     max_msa_rows=cfg.max_msa_rows, seed=self.val_seed)

            # One validation set: the first validated dataset's val split (the PDB set in the usual mixture).
            self.val_set = fixed_crops("val")
            # The same kind of fixed crops of *training* structures: scored like the validation set, the gap
            # between the two is what a run memorised (harness/train/validation.py, "train probe").
            self.train_probe_set = fixed_crops("train")

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            sampler=self._sampler,
            collate_fn=collate,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("validate")
        if self.val_set is None or len(self.val_set) == 0:
            return DataLoader([], batch_size=1)
        return DataLoader(
            self.val_set,
            batch_size=1,
            shuffle=False,
            collate_fn=collate,
            num_workers=min(self.config.num_workers, 1),
        )
