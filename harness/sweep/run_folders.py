"""Read a sweep back from disk (``<runs_dir>/<sweep>/<run_key>/config.yaml``), without its YAML file."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.config import load_record
from harness.errors import ConfigError
from harness.sweep.spec import RunSpec
from harness.tracking import names


def specs_from_folder(sweep_dir: str | Path) -> list[RunSpec]:
    """One RunSpec per run folder that holds a resolved config, sorted by key."""
    sweep_dir = Path(sweep_dir).resolve()
    if not sweep_dir.is_dir():
        raise ConfigError(str(sweep_dir), ["not a sweep folder (expected <runs_dir>/<sweep name>/)"])
    specs = []
    for config_path in sorted(sweep_dir.glob(f"*/{names.RUN_CONFIG_FILE}")):
        raw = yaml.safe_load(config_path.read_text()) or {}
        raw.pop("derived", None)  # the run's record of what it derived (perhaps by an older recipe layer)
        config = load_record(raw, str(config_path))
        specs.append(RunSpec(sweep=sweep_dir.name, label=config.name, config=config,
                             run_dir=config_path.parent))
    return specs
