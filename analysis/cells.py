"""Seed-averaged cells of a completed-runs table and their bootstrap replicates.

A *cell* is one configuration trained to one designed budget: a FLOPs budget (``kind = "flops"``, the isoFLOP
design) or, where ``budget_flops`` is NaN, a step budget (``kind = "steps"``). Its value is the mean of a metric
over the cell's seeds. Every law, backtest and piece of advice reads the same replicates, so their intervals
describe the same resampling:

- over seeds: each cell's mean is redrawn as its point value times (1 + the mean of k seed deviations drawn
  with replacement), k = the cell's seeds, from the relative seed deviations (run / cell mean − 1, scaled by
  √(k/(k−1)) so that their spread is unbiased) pooled over every budget of the same configuration. With 2–3
  seeds a cell's own runs say little about its spread (3 seeds give 10 distinct resamples, and a cell whose
  seeds happen to agree would get an interval near zero); pooling over budgets assumes the relative seed
  spread of a configuration does not depend on its budget. A configuration with one seed per cell borrows
  the deviations of all configurations; with none anywhere the spread is unknown (:attr:`Cells.seeds_vary`);
- over validation structures, when per-structure values are given: each replicate draws the structures with
  replacement (the same draw for every run: all runs score the same validation set) and shifts each run's value
  by the difference between its resampled and its full per-structure mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.collect import ReportInputError
from analysis.completed import COLUMNS, STRUCTURE_COLUMNS, check_completed_runs

KIND_FLOPS, KIND_STEPS = "flops", "steps"
# Per-cell columns: identity and design, then the means of the runs' own numbers.
CELL_COLUMNS = ("config", "group", "kind", "budget", "budget_flops", "budget_steps", "params", "flops_per_step",
                "examples", "flops", "n_seeds", "value", "sd")


@dataclass(frozen=True)
class Cells:
    """One metric's cells. ``table``: one row per cell (:data:`CELL_COLUMNS`; ``value`` = seed mean, ``sd`` =
    seed standard deviation, NaN with one seed); ``replicates``: (n_bootstrap, cells) resampled seed means;
    ``runs``: the completed-runs rows behind them."""

    metric: str
    table: pd.DataFrame
    replicates: np.ndarray
    runs: pd.DataFrame
    confidence: float = 0.95
    by_structure: bool = False
    seeds_vary: bool = True

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of each cell's value over the replicates: (low, high), each (cells,)."""
        tail = 50.0 * (1.0 - self.confidence)
        if not len(self.replicates):
            return self.table["value"].to_numpy(), self.table["value"].to_numpy()
        return (np.percentile(self.replicates, tail, axis=0), np.percentile(self.replicates, 100 - tail, axis=0))

    def select(self, mask: np.ndarray | pd.Series) -> Cells:
        """The cells where ``mask`` is True, with their replicate columns."""
        keep = np.asarray(mask, dtype=bool)
        return Cells(self.metric, self.table[keep].reset_index(drop=True), self.replicates[:, keep], self.runs,
                     self.confidence, self.by_structure, self.seeds_vary)

    @property
    def resampling(self) -> str:
        """What the replicates resample, for captions."""
        return "seeds and validation structures" if self.by_structure else "seeds"


def cells_of(table: pd.DataFrame, metric: str, *, n_bootstrap: int = 1000, seed: int = 0,
             structures: pd.DataFrame | None = None, confidence: float = 0.95) -> Cells:
    """The cells of ``metric`` in a completed-runs table (:mod:`analysis.completed`), with ``n_bootstrap``
    replicates. ``structures``: the per-structure long table (``run, structure, metric, value``) or None.

    Rows without a value of ``metric`` are left out. Raises ReportInputError when no run has the metric, or
    when per-structure values of ``metric`` are given for some runs but not all.
    """
    c = COLUMNS
    runs = check_completed_runs(table, (metric,))
    runs = runs[pd.to_numeric(runs[metric], errors="coerce").notna()].reset_index(drop=True)
    if runs.empty:
        raise ReportInputError(f"no completed run has a value of {metric!r}")
    kind = np.where(runs[c.budget_flops].notna(), KIND_FLOPS, KIND_STEPS)
    runs = runs.assign(_kind=kind, _budget=np.where(kind == KIND_FLOPS, runs[c.budget_flops], runs[c.budget_steps]))
    keys = ["_kind", "_budget", c.config]
    groups = runs.groupby(keys, sort=True)
    cell_of_run = groups.ngroup().to_numpy()
    rows = []
    for (kind_, budget, config), g in groups:
        values = g[metric].to_numpy(float)
        rows.append({"config": config, "group": g[c.group].iloc[0], "kind": kind_, "budget": float(budget),
                     "budget_flops": float(g[c.budget_flops].iloc[0]), "budget_steps": float(g[c.budget_steps].mean()),
                     "params": float(g[c.params].iloc[0]), "flops_per_step": float(g[c.flops_per_step].iloc[0]),
                     "examples": float(g[c.examples].mean()), "flops": float(g[c.flops].mean()),
                     "n_seeds": len(values), "value": float(values.mean()),
                     "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan})
    cells = pd.DataFrame(rows, columns=list(CELL_COLUMNS))
    rng = np.random.default_rng(seed)
    values = runs[metric].to_numpy(float)
    replicates, seeds_vary = _seed_means(values, cell_of_run, cells, rng, n_bootstrap)
    by_structure = structures is not None and not structures.empty
    if by_structure:
        shift = _structure_shift(structures, runs[c.run], metric, n_bootstrap, rng)  # (B, runs)
        membership = (cell_of_run[:, None] == np.arange(len(cells))[None]).astype(float)  # (runs, cells)
        replicates = replicates + shift @ (membership / membership.sum(0))
    return Cells(metric, cells, replicates, runs.drop(columns=["_kind", "_budget"]), confidence, by_structure,
                 seeds_vary)


def _seed_means(values: np.ndarray, cell_of_run: np.ndarray, cells: pd.DataFrame, rng: np.random.Generator,
                n_boot: int) -> tuple[np.ndarray, bool]:
    """(B, cells) resampled seed means (see the module docstring) and whether any seed deviation exists."""
    means = cells["value"].to_numpy()
    sizes = cells["n_seeds"].to_numpy()
    k = sizes[cell_of_run]
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = (values / means[cell_of_run] - 1.0) * np.sqrt(k / (k - 1.0))
    has = k > 1
    configs = cells["config"].to_numpy()[cell_of_run]
    pooled_all = deviation[has]
    if not len(pooled_all):
        return np.broadcast_to(means, (n_boot, len(means))).copy(), False
    out = np.empty((n_boot, len(means)))
    for config in np.unique(cells["config"]):
        pool = deviation[has & (configs == config)]
        pool = pool if len(pool) else pooled_all
        cols = np.flatnonzero(cells["config"].to_numpy() == config)
        k_max = int(sizes[cols].max())
        draws = pool[rng.integers(0, len(pool), (n_boot, len(cols), k_max))]
        used = np.arange(k_max)[None, None, :] < sizes[cols][None, :, None]
        out[:, cols] = means[cols] * (1.0 + (draws * used).sum(-1) / sizes[cols])
    return out, True


def _structure_shift(structures: pd.DataFrame, runs: pd.Series, metric: str, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """(B, runs): each run's resampled-minus-full mean over the validation structures of one replicate."""
    s = STRUCTURE_COLUMNS
    missing = [col for col in (s.run, s.structure, s.metric, s.value) if col not in structures]
    if missing:
        raise ReportInputError(f"per-structure table: missing columns {missing}; expected run, structure, metric, "
                               "value")
    rows = structures[structures[s.metric] == metric]
    if rows.empty:
        return np.zeros((n_boot, len(runs)))
    wide = rows.pivot_table(index=s.run, columns=s.structure, values=s.value, aggfunc="mean")
    absent = sorted(set(runs) - set(wide.index))
    if absent:
        raise ReportInputError(f"per-structure values of {metric!r} are missing for runs {absent[:5]} "
                               f"({len(absent)} of {len(runs)}): resampling structures needs them for every run")
    matrix = wide.reindex(runs.to_numpy()).to_numpy(float)  # (runs, S)
    if np.isnan(matrix).any():
        raise ReportInputError(f"per-structure values of {metric!r}: not every run scored every structure")
    n_struct = matrix.shape[1]
    weights = np.zeros((n_boot, n_struct))
    np.add.at(weights, (np.arange(n_boot)[:, None], rng.integers(0, n_struct, (n_boot, n_struct))), 1.0 / n_struct)
    return (weights - 1.0 / n_struct) @ matrix.T
