"""The dry-run's settings table: every setting a sweep writes, its value and where it was written (a profile file,
the sweep file's base, a run, grid/zip, the sweep's profile entry, ``--set``), and the runs it applies to. Every
other key is its RunConfig default; what the recipe derives from these is in the plan table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

from harness.sweep.expand import STUDY_SETS, assemble, choose_profile, study_design
from harness.sweep.schema import SweepFile
from harness.sweep.study import SCAN_VALIDATION

# Settings a study design sets per run (harness.sweep.study), shown as such rather than as their grid value: those
# a --set of is refused, and the milestones its branches start from.
STUDY_KEYS = (*STUDY_SETS, "train.milestone_steps")


@dataclass(frozen=True)
class Setting:
    key: str  # dotted, e.g. "train.lr"
    value: str  # as written in YAML
    source: str  # e.g. "sweeps/profiles/mini.yaml", "width_vs_depth.yaml: runs.large", "--set"
    runs: str  # "all", or the runs (labels without seed) it applies to, comma-separated


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings(sweep: SweepFile, profile: str | None, source: str, extra: dict[str, Any] | None = None,
             lr_source: str | None = None) -> list[Setting]:
    """The settings in effect for the sweep's runs, one row per (key, value, source), ordered by key."""
    name, prof = choose_profile(sweep, profile, source)
    groups: dict[tuple[str, str, str], list[str]] = {}
    all_groups: list[str] = []
    for run in assemble(sweep, name, prof, extra, source):
        if run.group not in all_groups:
            all_groups.append(run.group)
        for key, (value, where) in run.sources.items():
            if key in ("seed", "name"):
                continue
            runs = groups.setdefault((key, _shown(value), where), [])
            if run.group not in runs:
                runs.append(run.group)
    rows = [Setting(key, value, where, "all" if runs == all_groups else ", ".join(runs))
            for (key, value, where), runs in groups.items()]
    design = study_design(sweep, profile, source)
    if design is not None:
        where = prof.origin("study", f"{source}: profiles.{name}") if prof.study is not None \
            else f"{source}: study"
        rows = [r for r in rows if r.key not in STUDY_KEYS]
        rows += [Setting(key, "per run (study table)", f"{where} (study design)", "all") for key in STUDY_KEYS]
        if (lr_source or design.lr) == "scan":  # the rows' train.lr are the scan's centres
            rows.append(Setting("train.lr", f"x {design.scan.factors} (the scan), then each configuration's "
                                "choice (study table)", f"{where} (study design)", "all"))
            rows += [Setting(f"train.{key}", _shown(value), f"{where} (study design: the scan reads final val/loss "
                             "only)", "lr scan runs") for key, value in SCAN_VALIDATION.items()]
    return sorted(rows, key=lambda r: r.key)


def settings_table(rows: list[Setting]) -> Table:
    table = Table(title="settings written by the sweep and its profile (every other key: the RunConfig default)")
    for col in ("key", "value", "source", "runs"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row.key, row.value, row.source, row.runs)
    return table
