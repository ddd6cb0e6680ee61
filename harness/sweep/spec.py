"""A run spec: one fully resolved, validated run of a sweep, with its stable key and folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import RunConfig


@dataclass(frozen=True)
class RunSpec:
    """``key`` = ``<label>-<config_hash>``: the same resolved config always gets the same key and folder, so a
    rerun of the sweep finds (and skips or resumes) it instead of starting a duplicate."""

    sweep: str
    label: str  # run name + grid values + seed, e.g. "medium-lr0.001-s1"
    config: RunConfig
    run_dir: Path
    axes: dict[str, Any] = field(default_factory=dict)  # the grid/zip values that produced it
    tags: dict[str, str] = field(default_factory=dict)  # recorded with the run (study role, budgets, profile)
    after: tuple[str, int] | None = None  # (run key, step): start once that run has kept its checkpoint there

    @property
    def key(self) -> str:
        return self.run_dir.name
