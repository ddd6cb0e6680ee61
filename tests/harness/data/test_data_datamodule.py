"""The data module on the starter set: default config works out of the box; batches are padded FEATURES."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from harness.data.config import DataConfig, DatasetSpec
from harness.data.datamodule import StructureDataModule
from harness.data.starter import load_manifest
from models.features import check_example


def test_default_config_trains_and_validates_on_starter(starter_cache, tmp_path):
    cfg = DataConfig(datasets=[DatasetSpec(name="pdb", path=starter_cache)], crop_size=48, batch_size=2)
    dm = StructureDataModule(cfg, seed=0, cache_dir=tmp_path)
    dm.setup("fit")
    val_ids = {e.entry_id for e in load_manifest() if e.split == "val"}
    assert {e["entry_id"] for e in dm.val_set.entries} == val_ids
    seen = set()
    for batch in itertools.islice(dm.train_dataloader(), 10):
        check_example(batch, batched=True)
        assert batch["token_mask"].shape[0] == 2 and batch["token_mask"].sum(1).max() <= 48
        seen.update(batch["entry_id"])
    assert not seen & val_ids
    batch = next(iter(dm.val_dataloader()))
    check_example(batch, batched=True)
    assert batch["token_mask"].shape[0] == 1


def test_structure_folder_is_prepared_automatically(tmp_path, structures):
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name in ("1ubq.cif.gz", "3zee.cif.gz", "4i6p.cif.gz"):
        shutil.copy(structures / name, src)
    cfg = DataConfig(datasets=[DatasetSpec(name="mine", path=src, sampling="uniform")], val_fraction=0.0)
    dm = StructureDataModule(cfg, seed=1, cache_dir=tmp_path / "cache")
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 3
    check_example(next(iter(dm.train_dataloader())), batched=True)


def test_config_rejects_bad_values():
    with pytest.raises(ValidationError, match="unknown cropper"):
        DataConfig(cropper={"random": 1.0})
    with pytest.raises(ValidationError, match="unique"):
        DataConfig(datasets=[DatasetSpec(name="a"), DatasetSpec(name="a")])
    with pytest.raises(ValidationError):
        DataConfig(batch_size=2, surprise=1)


def test_af3_weights_drive_training_draws(starter_cache, tmp_path):
    cfg = DataConfig(datasets=[DatasetSpec(name="pdb", path=starter_cache)], samples_per_epoch=4000)
    dm = StructureDataModule(cfg, seed=0, cache_dir=tmp_path)
    dm.setup("fit")
    weights = dm.train_set.datasets[0].sample_weights
    assert (weights > 0).all() and weights.max() > 5 * weights.min()  # assemblies outweigh monomers
    # The sampler draws units (chains and interfaces); each belongs to one entry.
    unit_entry = dm.train_set.datasets[0].unit_table["example"]
    hits = np.bincount([unit_entry[i] for _, i, _ in dm._sampler], minlength=len(weights)) / 4000
    top = int(weights.argmax())
    assert abs(hits[top] - weights[top] / weights.sum()) < 0.02
