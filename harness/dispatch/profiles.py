"""Named SLURM profiles: ``slurm/profiles/<name>.yaml`` holds a ``SlurmResources`` mapping.

A profile name is looked up in ``$SEEDFOLD_SLURM_PROFILES`` (if set), then ``./slurm/profiles``, then the
``slurm/profiles`` folder of this checkout. A value containing ``/`` or ending in ``.yaml`` is a file path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.config_files import parse_config, read_yaml
from harness.dispatch.resources import SlurmResources
from harness.errors import ConfigError

_CHECKOUT_PROFILES = Path(__file__).resolve().parents[2] / "slurm" / "profiles"


def profile_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("SEEDFOLD_SLURM_PROFILES", "").split(os.pathsep) if p]
    return dirs + [Path("slurm/profiles"), _CHECKOUT_PROFILES]


def find_profile(name: str) -> Path:
    """Path of profile ``name``; ConfigError listing the available names when there is none."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        return Path(name)
    for folder in profile_dirs():
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    available = sorted({p.stem for d in profile_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(f"slurm profile {name!r}", [f"not found in {[str(d) for d in profile_dirs()]}; "
                                                  f"available: {available}"])


def load_resources(profile: str | None, overrides: dict[str, Any] | None = None,
                   source: str = "<slurm settings>") -> SlurmResources:
    """Resources of ``profile`` (None = SLURM defaults) with ``overrides`` (SlurmResources keys) on top."""
    raw: dict[str, Any] = {}
    if profile is not None:
        path = find_profile(profile)
        raw = read_yaml(path)
        parse_config(SlurmResources, raw, str(path))
    raw = raw | dict(overrides or {})
    return parse_config(SlurmResources, raw, source)
