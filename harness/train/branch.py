"""Branches: a run that starts from another run's milestone checkpoint instead of from scratch.

A warmup–stable–decay run of S steps is, up to its cooldown, the same trajectory as any longer WSD run of the
same configuration (same seed, data, lr and warmup). So a study that needs a configuration trained to several
step counts trains the longest once and *branches* each shorter one off it at the start of its cooldown: the
branch loads the parent's checkpoint at that step and trains only the cooldown (Hägele et al. 2024, "Scaling
Laws and Compute-Optimal Training Beyond Fixed Training Durations"). The branch's folder gets the parent's
metric rows up to the branch step, so its record reads like a run trained from step 0.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.config import RunConfig, load_record
from harness.errors import HarnessError
from harness.tracking import names
from harness.tracking.atomic import atomic_write_text
from harness.tracking.record import HEADER, parse_line
from harness.train.checkpointing import checkpoint_name


class BranchError(HarnessError):
    """A branch cannot start: its parent's checkpoint is missing, or the parent is another trajectory."""


def trajectory(config: RunConfig) -> dict:
    """What decides a WSD run's weights up to its cooldown: the config without its length and bookkeeping (the
    cooldown's own settings stay: a parent and its branch share them)."""
    dump = config.model_dump(mode="json", exclude={"runs_dir", "tracking", "name", "init_from"})
    for key in names.BOOKKEEPING_SETTINGS:
        dump["train"].pop(key, None)
    return dump


def parent_checkpoint(config: RunConfig) -> Path:
    """The checkpoint a branch starts from, after checking that the parent is the same trajectory and the branch
    step lies in its stable phase. Raises BranchError naming the file or the setting at fault."""
    init = config.init_from
    assert init is not None
    parent_dir = Path(init.run_dir)
    parent_config = parent_dir / names.RUN_CONFIG_FILE
    if not parent_config.is_file():
        raise BranchError(f"init_from: {parent_config} does not exist (no run in {parent_dir})")
    raw = yaml.safe_load(parent_config.read_text())
    raw.pop("derived", None)
    parent = load_record(raw, str(parent_config))
    ours, theirs = trajectory(config), trajectory(parent)
    if ours != theirs:
        differ = sorted(_differences(ours, theirs))
        raise BranchError(f"init_from: {parent_dir} trains another trajectory (differs in {', '.join(differ)})")
    if init.step > parent.train.schedule.decay_start(parent.train.max_steps):
        raise BranchError(f"init_from.step={init.step} lies in {parent_dir.name}'s own cooldown (from step "
                          f"{parent.train.schedule.decay_start(parent.train.max_steps)})")
    path = parent_dir / names.CHECKPOINT_DIR / checkpoint_name(init.step)
    if not path.is_file():
        raise BranchError(f"init_from: {path} does not exist: the parent has not reached step {init.step} or did not "
                          f"keep it (its train.milestone_steps must list {init.step})")
    return path


def copy_parent_records(config: RunConfig, folder: Path) -> int:
    """Write the parent's metric rows (``metrics.csv``, ``val_structures.csv``) up to the branch step as this
    run's (replacing what is there: a branch that never saved a checkpoint starts over). Returns the rows copied."""
    init = config.init_from
    assert init is not None
    copied = 0
    for name in (names.RUN_METRICS_FILE, names.RUN_STRUCTURE_METRICS_FILE):
        source = Path(init.run_dir) / name
        header, rows = HEADER, []
        if source.is_file():
            with open(source) as f:
                header = f.readline() or HEADER  # the parent's own columns
                rows = [line for line in f if line.endswith("\n") and (row := parse_line(line)) is not None
                        and row[0] <= init.step]
        atomic_write_text(folder / name, header + "".join(rows))
        copied += len(rows)
    return copied


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(a.keys() | b.keys()):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out
