"""A miniature run config that trains in seconds on 2 CPU cores, on the bundled starter set."""

import pytest

from harness.config import RunConfig, parse_config


def mini_config(tmp_path, **train) -> RunConfig:
    raw = {
        "name": "mini",
        "seed": 0,
        "runs_dir": str(tmp_path / "runs"),
        "model": {"preset": "base", "miniature": True},
        "data": {"crop_size": 32, "max_msa_rows": 8, "batch_size": 1, "num_workers": 0, "val_max_tokens": 48},
        "train": {"max_steps": 20, "warmup_steps": 5, "lr": 1e-3, "diffusion_batch": 2, "max_cycles": 1,
                  "val_every": 10, "val_sampling_steps": 20, "val_batches": 4, "checkpoint_every": 5, "log_every": 1,
                  "threads": 1} | train,
    }
    return parse_config(RunConfig, raw, "<test>")


@pytest.fixture
def make_config(tmp_path):
    return lambda **train: mini_config(tmp_path, **train)
