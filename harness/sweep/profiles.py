"""Profiles as data: ``sweeps/profiles/<name>.yaml`` holds a recipe (``paper``, ``mini``, ...) that sweeps name with
``extends`` and a profile file may build on (``long: {extends: mini}``), each stating only what differs.

A name is looked up in the ``profiles/`` folder next to the sweep file, then in this checkout's
``sweeps/profiles/``. Merging, child over parent: ``overrides`` and ``executor`` by key (``executor.slurm`` by
key too), ``description``, ``seeds`` and ``study`` replaced whole when the child states them; ``runs`` (per named
run) belong to the sweep only. The resolved profile records where each override was written (``origin``), which
the dry-run's settings table shows.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import RunConfig
from harness.config_files import parse_config, read_yaml
from harness.errors import ConfigError
from harness.sweep.keys import flatten
from harness.sweep.schema import ProfileFile, SweepFile, SweepProfile

CHECKOUT_PROFILES = Path(__file__).resolve().parents[2] / "sweeps" / "profiles"


def profile_dirs(sweep_path: str | Path) -> list[Path]:
    """Where profile names are looked up, first match wins."""
    dirs: list[Path] = []
    for folder in (Path(sweep_path).resolve().parent / "profiles", CHECKOUT_PROFILES):
        if folder not in dirs:
            dirs.append(folder)
    return dirs


def shown(path: Path) -> str:
    """``path`` as the dry-run shows it: relative to the working folder when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def find_profile(name: str, dirs: list[Path], where: str, key: str) -> Path:
    """The file of profile ``name``; ConfigError at ``where``/``key`` (the one naming it) when there is none."""
    for folder in dirs:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for folder in dirs if folder.is_dir() for p in folder.glob("*.yaml")})
    raise ConfigError(where, [f"{key}: no profile file {name}.yaml in {', '.join(shown(d) for d in dirs)}; "
                              f"profiles there: {known}"])


def merge(parent: SweepProfile, child: ProfileFile, label: str) -> SweepProfile:
    """``child`` over ``parent`` (rules in the module docstring); ``label`` says where ``child`` is written."""
    overrides = flatten(RunConfig, child.overrides)
    executor = parent.executor | child.executor
    if isinstance(parent.executor.get("slurm"), dict) and isinstance(child.executor.get("slurm"), dict):
        executor["slurm"] = parent.executor["slurm"] | child.executor["slurm"]
    merged = SweepProfile(
        description=child.description or parent.description,
        overrides=flatten(RunConfig, parent.overrides) | overrides,
        runs=dict(child.runs) if isinstance(child, SweepProfile) else {},
        seeds=child.seeds if child.seeds is not None else parent.seeds,
        executor=executor,
        study=child.study if child.study is not None else parent.study,
    )
    merged._origins = dict(parent._origins) | {key: label for key in overrides}
    if child.study is not None:
        merged._origins["study"] = label
    return merged


def load_profile(name: str, dirs: list[Path], where: str, key: str, chain: tuple[Path, ...] = ()) -> SweepProfile:
    """Profile file ``name`` with everything it extends merged in. ``chain``: the files that led here, to refuse
    a circle of ``extends``."""
    path = find_profile(name, dirs, where, key).resolve()
    if path in chain:
        circle = " -> ".join(shown(p) for p in (*chain, path))
        raise ConfigError(shown(chain[-1]), [f"extends: {name!r} closes a circle of profiles ({circle})"])
    own = parse_config(ProfileFile, read_yaml(path), shown(path))
    parent = SweepProfile()
    if own.extends is not None:
        parent = load_profile(own.extends, dirs, shown(path), "extends", (*chain, path))
    return merge(parent, own, shown(path))


def resolve_profiles(sweep: SweepFile, path: str | Path) -> SweepFile:
    """``sweep`` with every profile's ``extends`` resolved (the sweep's own entries marked as written in ``path``);
    ConfigError naming the file and key of an unknown, invalid or circular profile."""
    dirs = profile_dirs(path)
    resolved = {}
    for name, entry in sweep.profiles.items():
        parent = SweepProfile()
        if entry.extends is not None:
            parent = load_profile(entry.extends, dirs, str(path), f"profiles.{name}.extends")
        resolved[name] = merge(parent, entry, f"{path}: profiles.{name}")
    return sweep.model_copy(update={"profiles": resolved})
