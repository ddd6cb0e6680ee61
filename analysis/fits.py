"""Scaling-law fits of a sweep's curves: L(X) = E + A·X^(−α) and L(N, D) = E + A/N^α + B/D^β.

The fitting itself is :mod:`analysis.laws` (Huber δ = 1e-3 on log residuals, variable projection over the
exponents, then a polish; every bootstrap resample fitted in one vectorised batch). This module keeps the
curve-based views of a tidy (run, step) frame: :func:`fit_power_law` / :func:`fit_chinchilla` on points with
a pairs bootstrap (points resampled with replacement), the frontier of the seed-averaged curves, and
:func:`scaling_fits` for the report.

A fit the data cannot support is refused, not shown (:func:`fit_problem`, after :func:`analysis.laws.fit_problem`):
fewer than 2 points per coefficient; E or an exponent on its bound, or with a bootstrap interval that reaches its
bound or spans more than 10×; residuals that stay on one side of the law in long runs (Wald–Wolfowitz runs test).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis import laws
from analysis.collect import ReportInputError

HUBER_DELTA = laws.HUBER_DELTA

# Metrics where higher is better and 1 is perfect; fits use the error 1 − value.
SCORE_MARKERS = ("lddt", "dockq", "success", "accuracy", "precision")


def to_error(metric: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Values as a quantity falling with scale: ``1 − value`` for scores in [0, 1] (lDDT, DockQ), else as is.

    Returns the transformed values and the label of what is fitted (``"1 − val/lddt"`` or ``metric``).
    """
    values = np.asarray(values, dtype=float)
    if any(marker in metric.lower() for marker in SCORE_MARKERS):
        return 1.0 - values, f"1 − {metric}"
    return values, metric


def _one_blas_thread(fit: Callable) -> Callable:
    """Run a fit with one BLAS thread: L-BFGS-B's 3- or 5-parameter steps call BLAS on tiny vectors, and
    OpenBLAS's thread hand-off costs ~4 ms per step on a busy 2-core machine (measured: 40 bootstrap resamples
    of L(C) took 5.1 s of CPU with the default threads, 0.32 s with one)."""

    @functools.wraps(fit)
    def wrapper(*args: object, **kwargs: object) -> object:
        with threadpool_limits(limits=1, user_api="blas"):
            return fit(*args, **kwargs)

    return wrapper


# ------------------------------------------------------------------------------------------ L(X) = E + A·X^-α


@dataclass(frozen=True)
class PowerLawFit:
    """L(X) = E + A·X^(−α), with percentile bootstrap intervals ``intervals[name] = (low, high)``.

    ``samples`` holds the bootstrap coefficients, shape (n_bootstrap, 3): columns E, A, α. ``fit``: the
    engine's result (residuals, runs tests), None for a fit built by hand.
    """

    E: float
    A: float
    alpha: float
    intervals: dict[str, tuple[float, float]]
    n_points: int
    loss: float
    confidence: float
    samples: np.ndarray = field(repr=False)
    fit: laws.Fit | None = field(default=None, repr=False)

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        """L at X (same units as the fitted X)."""
        return self.E + self.A * np.asarray(x, dtype=float) ** (-self.alpha)

    def predict_interval(self, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band of the bootstrap fits' predictions at X: (low, high), each shaped like X."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        preds = laws.predict(self.samples, x[:, None])
        tail = 50.0 * (1.0 - self.confidence)
        return np.percentile(preds, tail, axis=0), np.percentile(preds, 100.0 - tail, axis=0)

    def as_row(self) -> dict[str, float]:
        """Coefficients and interval bounds as one flat table row."""
        row: dict[str, float] = {"n_points": self.n_points}
        for name in ("E", "A", "alpha"):
            lo, hi = self.intervals[name]
            row |= {name: getattr(self, name), f"{name}_low": lo, f"{name}_high": hi}
        return row


def _check_points(x: np.ndarray, y: np.ndarray, what: str, n_params: int) -> None:
    if x.shape != y.shape or x.ndim != 1:
        raise ReportInputError(f"{what}: x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ReportInputError(f"{what}: x and y must be finite (drop NaN rows first)")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ReportInputError(f"{what}: x and y must be positive for a power law in log space")
    if len(np.unique(x)) < n_params:
        raise ReportInputError(
            f"{what}: needs at least {n_params} distinct x values to fit {n_params} coefficients, "
            f"got {len(np.unique(x))}")


@_one_blas_thread
def fit_power_law(x: np.ndarray, y: np.ndarray, *, n_bootstrap: int = 200, confidence: float = 0.95,
                  seed: int = 0, variable: str = "X") -> PowerLawFit:
    """Fit L = E + A·X^(−α) to positive points (x, y), e.g. X = parameters or FLOPs, y = loss.

    ``n_bootstrap`` pairs-bootstrap resamples (0: no intervals, and :func:`fit_problem` refuses the fit).
    ``variable`` names X in refusal reasons. Raises ReportInputError on fewer than 3 distinct X values or
    non-positive input.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _check_points(x, y, "power-law fit", 3)
    f = laws.fit(x, y, (variable,), n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    c = f.coefficients
    return PowerLawFit(E=c["E"], A=c["A"], alpha=c["alpha"], intervals=f.intervals, n_points=len(x),
                       loss=f.objective, confidence=confidence, samples=f.samples, fit=f)


# ------------------------------------------------------------------------- L(N, D) = E + A/N^α + B/D^β


@dataclass(frozen=True)
class ChinchillaFit:
    """L(N, D) = E + A·N^(−α) + B·D^(−β); N = parameters, D = data (examples or tokens seen)."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    intervals: dict[str, tuple[float, float]]
    n_points: int
    loss: float
    confidence: float
    fit: laws.Fit | None = field(default=None, repr=False)

    def predict(self, n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n ** (-self.alpha) + self.B * d ** (-self.beta)

    def as_row(self) -> dict[str, float]:
        row: dict[str, float] = {"n_points": self.n_points}
        for name in ("E", "A", "alpha", "B", "beta"):
            lo, hi = self.intervals[name]
            row |= {name: getattr(self, name), f"{name}_low": lo, f"{name}_high": hi}
        return row


@_one_blas_thread
def fit_chinchilla(n: np.ndarray, d: np.ndarray, y: np.ndarray, *, n_bootstrap: int = 100,
                   confidence: float = 0.95, seed: int = 0) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^α + B/D^β to points from several model sizes N, each at several data sizes D.

    Needs at least 3 distinct N and 3 distinct D (the curves of a width/depth sweep give many D per N).
    """
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, y))
    _check_points(n, y, "Chinchilla fit (N)", 3)
    _check_points(d, y, "Chinchilla fit (D)", 3)
    f = laws.fit(np.column_stack([n, d]), y, ("N", "D"), n_bootstrap=n_bootstrap, seed=seed,
                 confidence=confidence)
    return ChinchillaFit(*f.point.tolist(), intervals=f.intervals, n_points=len(y), loss=f.objective,
                         confidence=confidence, fit=f)


# ------------------------------------------------------------------------------------- extrapolation


@dataclass(frozen=True)
class ExtrapolationCheck:
    """A fit without the largest X, asked to predict the held-out largest configuration."""

    held_out_x: float
    observed: float
    predicted: float
    predicted_low: float
    predicted_high: float
    fit: PowerLawFit

    @property
    def relative_error(self) -> float:
        """(predicted − observed) / observed."""
        return (self.predicted - self.observed) / self.observed

    @property
    def within_interval(self) -> bool:
        return self.predicted_low <= self.observed <= self.predicted_high


def extrapolation_check(x: np.ndarray, y: np.ndarray, **fit_kwargs: object) -> ExtrapolationCheck:
    """Fit on every point with X below the largest, predict the mean observed L at the largest X."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    largest = x.max()
    keep = x < largest
    fit = fit_power_law(x[keep], y[keep], **fit_kwargs)  # type: ignore[arg-type]
    low, high = fit.predict_interval(largest)
    return ExtrapolationCheck(held_out_x=float(largest), observed=float(y[~keep].mean()),
                              predicted=float(fit.predict(largest)), predicted_low=float(low[0]),
                              predicted_high=float(high[0]), fit=fit)


# ------------------------------------------------------------------------------------------- frontier


def compute_frontier(frame: pd.DataFrame, x: str, y: str, n_bins: int = 24) -> pd.DataFrame:
    """Lower envelope of y over x across all runs: per log-spaced x bin, the point with the lowest y.

    frame: one row per (run, step) as from ``analysis.collect.tidy``. Returns columns ``x``, ``y``, ``run``,
    sorted by x, keeping only points that improve on every smaller-x frontier point (the compute-optimal set
    that L(C) fits use).
    """
    for column in (x, y):
        if column not in frame:
            raise ReportInputError(f"frontier: no column {column!r} in the collected runs")
    points = frame[[x, y, "run"]].dropna()
    points = points[(points[x] > 0) & (points[y] > 0)]
    if points.empty:
        return pd.DataFrame(columns=["x", "y", "run"])
    edges = np.geomspace(points[x].min(), points[x].max() * (1 + 1e-9), n_bins + 1)
    points = points.assign(bin=np.digitize(points[x], edges))
    best = points.loc[points.groupby("bin")[y].idxmin()].sort_values(x)
    best = best[best[y] <= best[y].cummin()]
    return best.rename(columns={x: "x", y: "y"})[["x", "y", "run"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------- refusal

# An exponent (or E) whose 95% interval spans more than this factor is not determined by the data: α ∈ [0.02, 1.7]
# says anything from "no scaling" to "fast scaling", and a curve drawn through its point value is noise.
EXPONENT_MAX_SPAN = laws.MAX_SPAN


def fit_problem(fit: PowerLawFit | ChinchillaFit, n_coefficients: int | None = None) -> str | None:
    """Why ``fit`` must not be presented as a law, or None when it may be (:func:`analysis.laws.fit_problem`).

    ``n_coefficients``: coefficients the points must support (default the law's own: 3 or 5); a fit needs
    2 points per coefficient. A fit built by hand (``fit.fit`` None) is judged on its coefficients and
    intervals alone (:func:`analysis.laws.identification_problem`).
    """
    names = ("E", "A", "alpha") if isinstance(fit, PowerLawFit) else ("E", "A", "alpha", "B", "beta")
    k = n_coefficients or len(names)
    if fit.n_points < laws.POINTS_PER_COEFFICIENT * k:
        return (f"too few points ({fit.n_points} for {k} coefficients; needs at least "
                f"{laws.POINTS_PER_COEFFICIENT * k})")
    if fit.fit is not None:
        return laws.fit_problem(fit.fit)
    coefficients = {name: getattr(fit, name) for name in names}
    return laws.identification_problem(coefficients, fit.intervals, scale=max(fit.intervals["E"][1], 1e-300),
                                       variables=("X",) if len(names) == 3 else ("N", "D"))


# ----------------------------------------------------------------------------------- a sweep's fits

LAW_N, LAW_C, LAW_ND, LAW_BACKTEST = "L(N)", "L(C)", "L(N, D)", "extrapolation"


@dataclass(frozen=True)
class ScalingFits:
    """Every fit of one metric of a sweep. A law the data cannot support is None here and its reason is in
    ``refused[law]`` (laws: ``L(N)``, ``L(C)``, ``L(N, D)``, ``extrapolation``).

    ``target`` is what was fitted (``"1 − val/lddt"`` for scores, else the metric itself). ``frontier``: the
    compute-efficient points of the seed-averaged curves (columns x = FLOPs, y = target, run = config).
    ``converged``: the runs whose final points L(N) used.
    """

    metric: str
    target: str
    params: PowerLawFit | None
    compute: PowerLawFit | None
    extrapolation: ExtrapolationCheck | None
    chinchilla: ChinchillaFit | None
    refused: dict[str, str]
    frontier: pd.DataFrame
    converged: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


CONVERGED_RTOL = 0.05


def converged_runs(frame: pd.DataFrame, metric: str, rtol: float = CONVERGED_RTOL) -> list[str]:
    """Runs whose ``metric`` (as its error, see :func:`to_error`) has stopped moving over the second half of
    training, judged by the slope's interval, not a threshold on one change: the least-squares slope of the error
    against log step over the validations in the second half, with its 95 % t-interval, must contain 0 (a run still
    falling, or rising — a metric that peaked and declines — is not converged), and the interval must be narrow
    enough to say so: its half-width over the second half's log-step span at most ``rtol`` of the final error or
    twice the recorded estimator noise. Fewer than 3 validations in the second half: not judged (left out).
    L(N) is a statement about trained-out models; a run still moving measures its step budget, not its size."""
    from scipy import stats

    from analysis.seeds import run_noise

    noise = run_noise(frame, metric)
    out = []
    for run, curve in frame.dropna(subset=[metric]).groupby("run", sort=False):
        curve = curve[curve["step"] > 0]
        steps = curve["step"].to_numpy(float)
        if len(steps) < 2:
            continue
        late = steps >= steps[-1] / 2
        x, y = np.log(steps[late]), to_error(metric, curve[metric].to_numpy())[0][late]
        if len(x) < 3 or np.ptp(x) == 0:
            continue
        fit = stats.linregress(x, y)
        half = stats.t.ppf(0.975, len(x) - 2) * fit.stderr
        span = float(np.ptp(x))
        allowed = max(rtol * abs(y[-1]), 2 * float(np.nan_to_num(noise.get(run, np.nan))))
        if fit.slope - half <= 0 <= fit.slope + half and half * span <= allowed:
            out.append(str(run))
    return out


def scaling_fits(frame: pd.DataFrame, metric: str, *, n_bootstrap: int = 200, seed: int = 0,
                 max_chinchilla_points: int = 400) -> ScalingFits:
    """Fit ``metric`` of a tidy frame (``analysis.collect.tidy``) against parameters, compute and (N, D).

    - L(N): the final value of each converged run (:func:`converged_runs`) against its total parameters;
    - extrapolation: L(N) without the largest N, predicting the held-out largest;
    - L(C): the compute frontier of the seed-averaged curves against cumulative FLOPs;
    - L(N, D): every logged point against (parameters, examples seen), subsampled to
      ``max_chinchilla_points`` evenly over the steps.
    Each law passes :func:`fit_problem` or is refused with its reason.
    """
    from analysis.collect import final_values
    from analysis.seeds import curves_by_config

    refused: dict[str, str] = {}
    _, target = to_error(metric, np.zeros(1))

    def refuse(law: str, problem: str) -> None:
        refused[law] = problem if law != LAW_BACKTEST else f"the fit without the largest N: {problem}"

    def attempt(law: str, fit: Callable[[], object], n_coefficients: int, n_points: int) -> object | None:
        needed = laws.POINTS_PER_COEFFICIENT * n_coefficients
        if n_points < needed:  # known before fitting
            refuse(law, f"too few points ({n_points} for {n_coefficients} coefficients; needs at least {needed})")
            return None
        try:
            result = fit()
        except ReportInputError as exc:
            refuse(law, str(exc))
            return None
        law_fit = result.fit if isinstance(result, ExtrapolationCheck) else result
        problem = fit_problem(law_fit, n_coefficients)  # type: ignore[arg-type]
        if problem is not None:
            refuse(law, problem)
            return None
        return result

    finals = final_values(frame, metric).dropna(subset=["params"])
    converged = converged_runs(frame, metric)
    finals = finals[finals["run"].isin(converged)]
    params_fit = extrapolation = None
    if finals.empty:
        refused[LAW_N] = (f"no run converged (in every run the slope of {target} against log step over its "
                          "second half has a 95% interval that excludes 0, or is too wide to tell)")
        refused[LAW_BACKTEST] = refused[LAW_N]
    else:
        error = to_error(metric, finals[metric].to_numpy())[0]
        n = finals["params"].to_numpy()
        params_fit = attempt(LAW_N, lambda: fit_power_law(n, error, n_bootstrap=n_bootstrap, seed=seed,
                                                          variable="N"), 3, len(n))
        extrapolation = attempt(LAW_BACKTEST, lambda: extrapolation_check(
            n, error, n_bootstrap=n_bootstrap, seed=seed), 3, int((n < n.max()).sum()))

    curves = curves_by_config(frame, metric)
    curves["_target"] = to_error(metric, curves["mean"].to_numpy())[0]
    frontier = compute_frontier(curves.rename(columns={"config": "run"}), "flops", "_target")
    compute_fit = attempt(LAW_C, lambda: fit_power_law(frontier["x"].to_numpy(), frontier["y"].to_numpy(),
                                                        n_bootstrap=n_bootstrap, seed=seed, variable="C"),
                          3, len(frontier))

    points = frame.dropna(subset=[metric, "params", "examples"]).copy()
    points = points[points["examples"] > 0]
    points["_target"] = to_error(metric, points[metric].to_numpy())[0]
    if len(points) > max_chinchilla_points:
        points = points.iloc[np.linspace(0, len(points) - 1, max_chinchilla_points).astype(int)]
    chinchilla = attempt(LAW_ND, lambda: fit_chinchilla(
        points["params"].to_numpy(), points["examples"].to_numpy(), points["_target"].to_numpy(),
        n_bootstrap=n_bootstrap, seed=seed), 5, len(points))
    return ScalingFits(metric=metric, target=target, params=params_fit, compute=compute_fit,  # type: ignore[arg-type]
                       extrapolation=extrapolation, chinchilla=chinchilla, refused=refused,  # type: ignore[arg-type]
                       frontier=frontier, converged=tuple(converged))
