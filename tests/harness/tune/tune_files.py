"""Small tune YAMLs for tests, training the toy trainer (y = 3x + 1 by SGD)."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_tune(tmp_path: Path, **sections) -> Path:
    doc = {
        "name": "toy_study",
        "base": {"runs_dir": str(tmp_path / "runs"), "model": {"preset": "base", "miniature": True},
                 "train": {"max_steps": 8, "checkpoint_every": 4}},
        "metric": "train/loss",
        "n_trials": 4,
        "workers": 2,
        "space": {"train.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
                  "train.betas.1": {"type": "float", "low": 0.9, "high": 0.999}},
        "pruner": {"kind": "none"},
        "poll_s": 0.2,
        "executor": {"slurm_profile": "cpu_small", "slurm": {"mem_gb": 1, "time_min": 5}},
    } | sections
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
