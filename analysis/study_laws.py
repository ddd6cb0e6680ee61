"""The scaling laws of a completed-runs study, each backtested, or refused with its reason.

Three laws, fitted on seed-averaged cells (:mod:`analysis.cells`) by :mod:`analysis.laws`, their intervals from
the cells' bootstrap over seeds (and validation structures when given):

- ``L(C) = E + A·C^−α``: per FLOPs budget the best configuration's value (the isoFLOP frontier), against the
  budget (re-chosen in every resample);
- ``L(N) = E + A·N^−α``: every configuration at one step budget (equal training steps), against parameters;
- ``L(N, D) = E + A/N^α + B/D^β``: every cell, against parameters and examples seen.

Scores (lDDT, contact precision) are fitted as their error 1 − value (:func:`analysis.fits.to_error`).

Every law is refitted without its largest budget and, separately, without its largest configuration, and the
refit predicts the held-out points (:class:`Backtest`). A law is presented only when its own fit passes
:func:`analysis.laws.fit_problem`, at least one backtest applies, and every applicable backtest ran and passed:
each held-out point's relative error has a bootstrap interval (Bonferroni over the held-out points) that
contains 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis import laws
from analysis.cells import KIND_FLOPS, KIND_STEPS, Cells, cells_of
from analysis.fits import to_error

LAW_C, LAW_N, LAW_ND = "L(C)", "L(N)", "L(N, D)"
LAWS = (LAW_C, LAW_N, LAW_ND)
FORMS = {LAW_C: "E + A·C^−α", LAW_N: "E + A·N^−α", LAW_ND: "E + A/N^α + B/D^β"}
VARIABLES = {LAW_C: ("C",), LAW_N: ("N",), LAW_ND: ("N", "D")}
HOLDOUT_BUDGET, HOLDOUT_CONFIG = "largest budget", "largest configuration"


@dataclass(frozen=True)
class LawPoints:
    """What one law fits: ``points`` (one row per point: ``config``, ``kind``, ``budget``, ``params``,
    ``examples``, ``value`` = target seed mean, ``low``/``high`` = its bootstrap interval), the predictors
    ``x`` (n, m), values ``y`` (n,) and their bootstrap ``replicates`` (B, n); or ``problem``: why the cells
    hold no points for this law."""

    points: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    replicates: np.ndarray
    problem: str | None = None


@dataclass(frozen=True)
class Backtest:
    """A refit without the held-out points, asked to predict them.

    ``holdout``: :data:`HOLDOUT_BUDGET` or :data:`HOLDOUT_CONFIG`; ``what``: the held-out budget or
    configuration in words; ``factor``: how far past its own data the refit extrapolates (held-out budget /
    largest remaining budget, or held-out parameters / largest remaining); ``points``: per held-out point
    ``config``, ``budget``, ``params``, ``examples``, ``observed``, ``predicted``, ``error`` =
    (predicted − observed) / observed and its interval ``error_low``/``error_high`` (Bonferroni over the
    points); ``error``: mean relative error over the points with its ``interval``; ``problem``: why it did
    not run (``applicable`` False: nothing to hold out); ``refit``: the fit without the held-out points.
    Errors are on the fitted target's scale.
    """

    holdout: str
    what: str
    factor: float
    points: pd.DataFrame
    error: float
    interval: tuple[float, float]
    problem: str | None = None
    applicable: bool = True
    refit: laws.Fit | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return (self.applicable and self.problem is None and bool(
            ((self.points["error_low"] <= 0) & (self.points["error_high"] >= 0)).all()))

    def text(self) -> str:
        head = f"without the {self.holdout} ({self.what})"
        if not self.applicable or self.problem is not None:
            return f"{head}: {'not applicable' if not self.applicable else 'cannot run'}: {self.problem}"
        obs, pred = self.points["observed"], self.points["predicted"]
        values = (f"predicted {pred.iloc[0]:.4g} vs observed {obs.iloc[0]:.4g}" if len(self.points) == 1 else
                  f"{len(self.points)} held-out points")
        low, high = self.interval
        return (f"{head}, {self.factor:.2g}× past the refit's data: {values}, error {100 * self.error:+.2f} % "
                f"[{100 * low:+.2f}, {100 * high:+.2f}] ({'passes' if self.passed else 'fails'})")


@dataclass(frozen=True)
class StudyLaw:
    """One law of one metric: the fit (None unless presented: a refused law is never drawable), its points
    and backtests, and ``problem``: why it is not presented (None when it is). ``candidate``: the fit a refused
    law would have had (diagnostics only, never to be drawn). ``target``: what was fitted (``val/loss`` or
    ``1 − val/lddt``); ``seed_sd``: pooled seed-to-seed standard deviation of the target within cells (for the
    interval of a new run); ``resampling``: what the bootstrap resampled."""

    name: str
    metric: str
    target: str
    fit: laws.Fit | None
    points: pd.DataFrame
    backtests: tuple[Backtest, ...]
    problem: str | None
    seed_sd: float
    resampling: str
    candidate: laws.Fit | None = field(default=None, repr=False)

    @property
    def presented(self) -> bool:
        return self.problem is None

    @property
    def form(self) -> str:
        return f"{self.name} = {FORMS[self.name]}"

    def status(self) -> str:
        """``not fitted: <reason>`` or the coefficients with their intervals."""
        if self.problem is not None:
            return f"not fitted: {self.problem}"
        assert self.fit is not None
        parts = [f"{laws.label(k)} = {v:.4g} [{lo:.4g}, {hi:.4g}]"
                 for (k, v), (lo, hi) in zip(self.fit.coefficients.items(), self.fit.intervals.values(), strict=True)]
        return ", ".join(parts)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The target at predictors ``x`` (q, m): point, low, high (the law's bootstrap band). Raises
        ValueError for a law that is not presented."""
        if not self.presented or self.fit is None:
            raise ValueError(f"{self.name} of {self.metric} is not fitted: {self.problem}")
        low, high = self.fit.predict_interval(x)
        return self.fit.predict(x), low, high


# ------------------------------------------------------------------------------------------ law points


def target_cells(cells: Cells) -> Cells:
    """The cells on the fitted target's scale (``1 − value`` for scores)."""
    table = cells.table.copy()
    table["value"] = to_error(cells.metric, table["value"].to_numpy())[0]
    return Cells(cells.metric, table, to_error(cells.metric, cells.replicates)[0], cells.runs, cells.confidence,
                 cells.by_structure, cells.seeds_vary)


def _points(cells: Cells, rows: np.ndarray, reps: np.ndarray, x: np.ndarray) -> LawPoints:
    table = cells.table.iloc[rows][["config", "kind", "budget", "params", "examples"]].reset_index(drop=True)
    y = cells.table["value"].to_numpy()[rows]
    tail = 50.0 * (1.0 - cells.confidence)
    low, high = ((np.percentile(reps, tail, axis=0), np.percentile(reps, 100 - tail, axis=0)) if len(reps)
                 else (y, y))
    table = table.assign(value=y, low=low, high=high)
    return LawPoints(table, x, y, reps)


def compute_points(cells: Cells) -> LawPoints:
    """L(C): per FLOPs budget, the configuration with the lowest target (the frontier) against the budget."""
    flops = np.flatnonzero((cells.table["kind"] == KIND_FLOPS).to_numpy())
    if not len(flops):
        return _no_points("no FLOPs budgets: every run was trained to a step budget, so there is no isoFLOP "
                          "frontier (L(C) needs runs whose schedules end at designed FLOPs budgets)")
    budgets = cells.table["budget"].to_numpy()[flops]
    values = cells.table["value"].to_numpy()[flops]
    rows, reps = [], []
    for budget in np.unique(budgets):
        members = flops[budgets == budget]
        rows.append(members[np.argmin(values[budgets == budget])])
        reps.append(cells.replicates[:, members].min(axis=1) if len(cells.replicates) else np.zeros(0))
    rows_arr = np.array(rows)
    return _points(cells, rows_arr, np.column_stack(reps) if len(cells.replicates) else np.zeros((0, len(rows))),
                   np.unique(budgets)[:, None])


def params_points(cells: Cells) -> LawPoints:
    """L(N): every configuration at the step budget most configurations share (ties: the largest)."""
    steps = cells.table[cells.table["kind"] == KIND_STEPS]
    if steps.empty:
        return _no_points("no step budget: L(N) compares sizes at equal training steps, and every run was "
                          "trained to a FLOPs budget (see L(N, D))")
    counts = steps.groupby("budget")["config"].nunique()
    budget = max(counts[counts == counts.max()].index)
    rows = np.flatnonzero(((cells.table["kind"] == KIND_STEPS) & (cells.table["budget"] == budget)).to_numpy())
    return _points(cells, rows, cells.replicates[:, rows], cells.table["params"].to_numpy()[rows, None])


def data_points(cells: Cells) -> LawPoints:
    """L(N, D): every cell, against (parameters, examples seen)."""
    rows = np.arange(len(cells.table))
    x = cells.table[["params", "examples"]].to_numpy(float)
    return _points(cells, rows, cells.replicates, x)


def _no_points(problem: str) -> LawPoints:
    return LawPoints(pd.DataFrame(), np.zeros((0, 1)), np.zeros(0), np.zeros((0, 0)), problem)


POINTS: dict[str, Callable[[Cells], LawPoints]] = {LAW_C: compute_points, LAW_N: params_points, LAW_ND: data_points}


# -------------------------------------------------------------------------------------------- fitting


def _fit(name: str, data: LawPoints, refit: bool = False) -> tuple[laws.Fit | None, str | None]:
    """The law's fit on ``data`` and why it must not be presented (None: it may be).

    A presented law needs :data:`analysis.laws.POINTS_PER_COEFFICIENT` points per coefficient; a backtest's
    ``refit`` (one budget or configuration fewer) needs one point more than its coefficients, and passes every
    other rule of :func:`analysis.laws.fit_problem`.
    """
    if data.problem is not None:
        return None, data.problem
    k = 1 + 2 * len(VARIABLES[name])
    needed = k + 1 if refit else laws.POINTS_PER_COEFFICIENT * k
    if len(data.y) < needed:
        return None, f"too few points ({len(data.y)} for {k} coefficients; needs at least {needed})"
    if np.any(data.y <= 0):
        return None, "a value is ≤ 0: a power law in log space needs positive values"
    try:
        f = laws.fit(data.x, data.y, VARIABLES[name], replicates=np.maximum(data.replicates, 1e-12))
    except ValueError as exc:
        return None, str(exc)
    return f, laws.fit_problem(f, n_points=max(len(data.y), laws.POINTS_PER_COEFFICIENT * k) if refit else None)


def _largest_budget(cells: Cells, name: str) -> tuple[np.ndarray, str, float] | None:
    """Mask of the cells at the largest budget (FLOPs budgets first), its words, and its factor over the
    largest remaining budget of the same kind; None when there is no second budget."""
    kind = KIND_FLOPS if (cells.table["kind"] == KIND_FLOPS).any() else KIND_STEPS
    if name == LAW_N:
        kind = KIND_STEPS
    budgets = np.unique(cells.table.loc[cells.table["kind"] == kind, "budget"])
    if len(budgets) < 2:
        return None
    mask = ((cells.table["kind"] == kind) & (cells.table["budget"] == budgets[-1])).to_numpy()
    unit = "FLOPs" if kind == KIND_FLOPS else "steps"
    return mask, f"{budgets[-1]:.3g} {unit}", float(budgets[-1] / budgets[-2])


def _largest_config(cells: Cells) -> tuple[np.ndarray, str, float] | None:
    params = cells.table.groupby("config")["params"].first().sort_values()
    if len(params) < 2 or params.iloc[-1] == params.iloc[-2]:
        return None
    config = str(params.index[-1])
    return (cells.table["config"] == config).to_numpy(), config, float(params.iloc[-1] / params.iloc[-2])


def backtest(name: str, cells: Cells, holdout: str) -> Backtest:
    """Refit ``name`` without the held-out cells and predict the held-out points of the full data."""
    found = _largest_budget(cells, name) if holdout == HOLDOUT_BUDGET else _largest_config(cells)
    empty = pd.DataFrame()
    if found is None:
        what = "one budget only" if holdout == HOLDOUT_BUDGET else "one configuration size only"
        return Backtest(holdout, what, math.nan, empty, math.nan, (math.nan, math.nan),
                        f"the cells have {what}", applicable=False)
    mask, what, factor = found
    full, train = POINTS[name](cells), POINTS[name](cells.select(~mask))
    held_cells = cells.table[mask]
    keys = set(zip(held_cells["config"], held_cells["kind"], held_cells["budget"], strict=True))
    if full.problem is not None:
        return Backtest(holdout, what, factor, empty, math.nan, (math.nan, math.nan), full.problem, applicable=False)
    held = np.array([(c, k, b) in keys for c, k, b in zip(full.points["config"], full.points["kind"],
                                                          full.points["budget"], strict=True)])
    if not held.any() or held.all():
        reason = ("the held-out cells are not among the law's points" if not held.any() else
                  "the held-out cells are all of the law's points")
        return Backtest(holdout, what, factor, empty, math.nan, (math.nan, math.nan), reason, applicable=False)
    refit, problem = _fit(name, train, refit=True)
    if problem is not None or refit is None:
        return Backtest(holdout, what, factor, empty, math.nan, (math.nan, math.nan),
                        f"the refit without it is not fitted: {problem}")
    x_held, observed = full.x[held], full.y[held]
    predicted = refit.predict(x_held)
    errors = (refit.predict_samples(x_held) - full.replicates[:, held]) / full.replicates[:, held]  # (B, h)
    tail = 50.0 * (1.0 - cells.confidence) / held.sum()  # Bonferroni over the held-out points
    low, high = np.percentile(errors, [tail, 100 - tail], axis=0)
    points = full.points[held][["config", "budget", "params", "examples"]].reset_index(drop=True).assign(
        observed=observed, predicted=predicted, error=(predicted - observed) / observed, error_low=low,
        error_high=high)
    mean_tail = 50.0 * (1.0 - cells.confidence)
    mean_errors = errors.mean(axis=1)
    interval = tuple(float(v) for v in np.percentile(mean_errors, [mean_tail, 100 - mean_tail]))
    return Backtest(holdout, what, factor, points, float(points["error"].mean()), interval, refit=refit)  # type: ignore[arg-type]


def study_law(name: str, cells: Cells) -> StudyLaw:
    """One law of ``cells`` (already on the target scale, :func:`target_cells`) with its backtests."""
    data = POINTS[name](cells)
    f, problem = _fit(name, data)
    if not cells.seeds_vary:
        problem = ("every cell has one seed: there is no seed-to-seed spread to bootstrap, so no interval "
                   "(run at least 2 seeds per configuration and budget)")
    backtests: tuple[Backtest, ...] = ()
    if problem is None:
        backtests = (backtest(name, cells, HOLDOUT_BUDGET), backtest(name, cells, HOLDOUT_CONFIG))
        problem = _backtest_problem(backtests)
    sd = cells.table["sd"].dropna().to_numpy()
    _, target = to_error(cells.metric, np.zeros(1))
    return StudyLaw(name=name, metric=cells.metric, target=target, fit=f if problem is None else None,
                    points=data.points, backtests=backtests, problem=problem,
                    seed_sd=float(np.sqrt(np.mean(sd**2))) if len(sd) else math.nan, resampling=cells.resampling,
                    candidate=f)


def _backtest_problem(backtests: tuple[Backtest, ...]) -> str | None:
    applicable = [b for b in backtests if b.applicable]
    if not applicable:
        return "no backtest applies: " + "; ".join(f"without the {b.holdout}, {b.problem}" for b in backtests)
    for b in applicable:
        if b.problem is not None:
            return f"the backtest without the {b.holdout} ({b.what}) cannot run: {b.problem}"
        if not b.passed:
            return f"the backtest fails: {b.text()}"
    return None


def study_laws(table: pd.DataFrame, metric: str = "val/loss", *, n_bootstrap: int = 1000, seed: int = 0,
               structures: pd.DataFrame | None = None, names: tuple[str, ...] = LAWS,
               confidence: float = 0.95) -> dict[str, StudyLaw]:
    """Every law in ``names`` of ``metric`` over a completed-runs table (:mod:`analysis.completed`), keyed by
    law name. ``structures``: per-structure values for bootstrapping over structures too."""
    with threadpool_limits(limits=1, user_api="blas"):  # tiny batched solves: thread hand-off costs more
        cells = target_cells(cells_of(table, metric, n_bootstrap=n_bootstrap, seed=seed, structures=structures,
                                      confidence=confidence))
        return {name: study_law(name, cells) for name in names}
