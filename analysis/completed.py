"""The completed-runs table: one row per run that finished its own learning-rate schedule at a designed budget.

Scaling laws, backtests, compute-optimal advice and the loss → structure-metric ladder read this table and
nothing else. Its columns are named by :data:`COLUMNS` (:class:`RunColumns`):

- identity: ``run`` (run key), ``config`` (configuration name without seed), ``group`` (paper configuration),
  ``seed``;
- size and cost: ``params``, ``params_non_embedding``, ``flops_per_step`` (analytic, fwd + bwd, per optimizer
  step), ``lr``;
- design: ``budget_flops`` (designed FLOPs budget; NaN for a pure step budget), ``budget_steps`` (designed steps);
- outcome: ``steps`` (completed optimizer steps), ``flops`` (cumulative training FLOPs at the end),
  ``examples`` (examples seen), ``device_s`` (measured training device-seconds);
- final metrics: ``val/loss`` (primary), ``val/loss_noise`` (estimator noise, std), ``val/lddt`` (sampled lDDT,
  in [0, 1], higher better), ``val/contact_precision`` (long-range top-L/5 contact precision, higher better).

Per-structure final values, when recorded, come as a long table with columns :data:`STRUCTURE_COLUMNS`
(``run``, ``structure``, ``metric``, ``value``).

:func:`completed_runs` builds the table from a tidy (run, step) frame of run folders recorded before budgets
existed (every finished run counts as completed at its last step, one step budget per run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from analysis.collect import ReportInputError


@dataclass(frozen=True)
class RunColumns:
    """Column names of the completed-runs table (one row per completed run)."""

    run: str = "run"
    config: str = "config"
    group: str = "group"
    seed: str = "seed"
    params: str = "params"
    params_non_embedding: str = "params_non_embedding"
    flops_per_step: str = "flops_per_step"
    budget_flops: str = "budget_flops"
    budget_steps: str = "budget_steps"
    steps: str = "steps"
    flops: str = "flops"
    examples: str = "examples"
    device_s: str = "device_s"
    lr: str = "lr"
    loss: str = "val/loss"
    loss_noise: str = "val/loss_noise"
    lddt: str = "val/lddt"
    contact_precision: str = "val/contact_precision"


@dataclass(frozen=True)
class StructureColumns:
    """Column names of the per-structure long table (one row per run, structure and metric)."""

    run: str = "run"
    structure: str = "structure"
    metric: str = "metric"
    value: str = "value"


COLUMNS = RunColumns()
STRUCTURE_COLUMNS = StructureColumns()
ALL_COLUMNS = tuple(getattr(COLUMNS, f.name) for f in fields(RunColumns))
# What every law, backtest and piece of advice needs; the metric columns are checked per use.
REQUIRED = (COLUMNS.run, COLUMNS.config, COLUMNS.seed, COLUMNS.params, COLUMNS.flops_per_step,
            COLUMNS.budget_flops, COLUMNS.budget_steps, COLUMNS.steps, COLUMNS.flops, COLUMNS.examples)
# The estimator noise recorded beside a final metric (NaN where the run records none).
NOISE_OF = {COLUMNS.loss: COLUMNS.loss_noise}


def check_completed_runs(table: pd.DataFrame, metrics: tuple[str, ...] = (), what: str = "completed-runs table"
                         ) -> pd.DataFrame:
    """The rows of ``table`` that completed their designed budget, validated; raises ReportInputError naming
    the missing column or the offending runs.

    Required columns: :data:`REQUIRED` plus ``metrics``. A row is completed when ``steps ≥ budget_steps``;
    rows that did not complete are dropped here (a run read part-way through its schedule is not a run
    trained for that budget). ``params``, ``flops_per_step`` and ``budget_steps`` must be positive and finite;
    ``budget_flops`` positive or NaN; run keys unique.
    """
    c = COLUMNS
    missing = [col for col in (*REQUIRED, *metrics) if col not in table]
    if missing:
        raise ReportInputError(f"{what}: missing columns {missing}; expected at least {list(REQUIRED)}")
    duplicated = table[c.run][table[c.run].duplicated()].tolist()
    if duplicated:
        raise ReportInputError(f"{what}: run keys repeated: {sorted(set(map(str, duplicated)))[:5]}")
    for col in (c.params, c.flops_per_step, c.budget_steps):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = table.loc[~(np.isfinite(values) & (values > 0)), c.run].tolist()
        if bad:
            raise ReportInputError(f"{what}: column {col!r} must be positive and finite; runs {bad[:5]}")
    budget = pd.to_numeric(table[c.budget_flops], errors="coerce")
    bad = table.loc[budget.notna() & ~(budget > 0), c.run].tolist()
    if bad:
        raise ReportInputError(f"{what}: column {c.budget_flops!r} must be positive or NaN; runs {bad[:5]}")
    done = table[pd.to_numeric(table[c.steps], errors="coerce") >= table[c.budget_steps]].copy()
    if done.empty:
        raise ReportInputError(f"{what}: no run completed its budget (steps ≥ budget_steps)")
    if c.group not in done:
        done[c.group] = done[c.config]
    return done.reset_index(drop=True)


def completed_runs(frame: pd.DataFrame, metrics: tuple[str, ...] = (COLUMNS.loss, COLUMNS.loss_noise,
                                                                    COLUMNS.lddt, COLUMNS.contact_precision)
                   ) -> pd.DataFrame:
    """The completed-runs table of a tidy (run, step) frame (``analysis.collect.tidy``): the study's runs that
    completed their schedule (:func:`analysis.study.completed_runs`; learning-rate scan runs only where they are
    the study's own run at its rate), one row per run.

    ``budget_flops``: the FLOPs budget the run completes (its ``study_budgets`` tag), NaN for a run that completes
    a step budget only (every run recorded before study designs); ``budget_steps`` = ``steps`` = its last step.
    ``flops_per_step`` = the run's recorded ``flops/per_step`` (else final FLOPs / steps). Final metrics are the
    values at the run's last step; ``group`` is the paper configuration (``analysis.compare``).
    """
    from analysis.compare import group_column
    from analysis.study import AXIS_FLOPS
    from analysis.study import completed_runs as study_runs

    c = COLUMNS
    if "group" not in frame:
        frame = frame.assign(group=group_column(frame))
    done = study_runs(frame)
    done = done[done["in_study"]]
    if done.empty:
        raise ReportInputError("completed runs: no run has completed its schedule")
    rows = []
    for run, budgets in done.groupby("run", sort=True):
        last = budgets.iloc[0]
        curve = frame[frame["run"] == run]
        steps = float(last["steps"])
        flops_budget = budgets.loc[budgets["budget_axis"] == AXIS_FLOPS, "budget"]
        per_step = curve["flops/per_step"].dropna() if "flops/per_step" in curve else pd.Series(dtype=float)
        row = {
            c.run: run, c.config: last["config"], c.group: last["group"], c.seed: last["seed"],
            c.params: last["params"], c.params_non_embedding: last["params_non_embedding"],
            c.flops_per_step: float(per_step.iloc[-1]) if len(per_step) else float(last["flops"]) / steps,
            c.budget_flops: float(flops_budget.iloc[0]) if len(flops_budget) else math.nan,
            c.budget_steps: steps, c.steps: steps, c.flops: float(last["flops"]),
            c.examples: float(last["examples"]), c.device_s: float(last.get("device_s", math.nan)),
            c.lr: last["lr"],
        }
        for metric in metrics:
            row[metric] = float(last[metric]) if metric in last and pd.notna(last[metric]) else math.nan
        rows.append(row)
    return check_completed_runs(pd.DataFrame(rows), what="completed runs of the tidy frame")
