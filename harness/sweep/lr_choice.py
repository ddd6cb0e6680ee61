"""After a study's lr scan: each configuration's chosen learning rate, read from the scan's run folders and
written to ``<sweep folder>/lr_choice.json`` (the record the report and a rerun read back)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from analysis.lr_scan import choose_lr, describe
from harness.sweep.progress import run_finished
from harness.sweep.spec import RunSpec
from harness.tracking import names
from harness.tracking.run_folder import RunFolder, atomic_write_text

CHOICE_FILE = "lr_choice.json"


def final_loss(spec: RunSpec) -> float:
    """The run's ``val/loss`` at its last step (NaN when it diverged or never validated there)."""
    state = RunFolder(spec.run_dir).read_state()
    value = (state.get("last_metrics") or {}).get(names.VAL_LOSS)
    return float(value) if value is not None else math.nan


def choose(scan: list[RunSpec]) -> dict[str, tuple[float, str]] | None:
    """configuration → (lr, how it was chosen); None while some scan run has not finished."""
    if not scan or not all(run_finished(spec) for spec in scan):
        return None
    by_conf: dict[str, dict[float, list[float]]] = {}
    for spec in scan:
        by_conf.setdefault(spec.tags[names.TAG_STUDY_CONFIG], {}).setdefault(spec.config.train.lr, []).append(
            final_loss(spec))
    out = {}
    for conf, points in by_conf.items():
        lrs = sorted(points)
        losses = [sum(points[lr]) / len(points[lr]) for lr in lrs]
        choice = choose_lr(lrs, losses)
        out[conf] = (choice.lr, f"scan: {describe(choice)}")
    return out


def write_choice(sweep_dir: Path, chosen: dict[str, tuple[float, str]]) -> Path:
    path = sweep_dir / CHOICE_FILE
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({c: {"lr": lr, "note": note} for c, (lr, note) in chosen.items()},
                                       indent=2) + "\n")
    return path
