"""Small sweep YAMLs written into a test's tmp folder."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_sweep(tmp_path: Path, name: str = "toy", **sections) -> Path:
    doc = {
        "name": name,
        "base": {"runs_dir": str(tmp_path / "runs"), "model": {"preset": "base", "miniature": True},
                 "train": {"max_steps": 12, "checkpoint_every": 4, "lr": 0.2}},
        "runs": {"a": {}, "b": {"train.lr": 0.1}},
    } | sections
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
