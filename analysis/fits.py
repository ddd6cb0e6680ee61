"""Scaling-law fits (SPEC.md §4): L(X) = E + A·X^(−α) and the Chinchilla form L(N, D) = E + A/N^α + B/D^β.

A fit the data cannot support is refused, not shown (:func:`fit_problem`): too few points for its
coefficients, a coefficient on the optimiser's bound, or a bootstrap interval that collapsed onto the point
estimate (every resample lands on the same optimum, so the interval says nothing about the data).

Fitted as in Hoffmann et al. (2022): in log space, log L̂ = LSE(e, a − α·log X) with E = exp(e), A = exp(a),
minimising a Huber loss (δ = 1e-3) of log L − log L̂ by L-BFGS-B from a grid of starts; the best start wins.
X is divided by its geometric mean inside the fit (conditioning only); reported coefficients are in the
original units of X. Confidence intervals are percentile intervals over a pairs bootstrap (points resampled
with replacement, each resample refitted).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from analysis.collect import ReportInputError

HUBER_DELTA = 1e-3
_BOUNDS_E = (-30.0, 30.0)
_BOUNDS_LOG_COEF = (-60.0, 60.0)
_BOUNDS_EXPONENT = (1e-4, 10.0)

# Metrics where higher is better and 1 is perfect; fits use the error 1 − value.
SCORE_MARKERS = ("lddt", "dockq", "success", "accuracy")


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


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals r and its derivative dH/dr."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return loss, grad


# ------------------------------------------------------------------------------------------ L(X) = E + A·X^-α


@dataclass(frozen=True)
class PowerLawFit:
    """L(X) = E + A·X^(−α), with percentile bootstrap intervals ``intervals[name] = (low, high)``.

    ``samples`` holds the bootstrap coefficients, shape (n_bootstrap, 3): columns E, A, α.
    """

    E: float
    A: float
    alpha: float
    intervals: dict[str, tuple[float, float]]
    n_points: int
    loss: float
    confidence: float
    samples: np.ndarray = field(repr=False)

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        """L at X (same units as the fitted X)."""
        return self.E + self.A * np.asarray(x, dtype=float) ** (-self.alpha)

    def predict_interval(self, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band of the bootstrap fits' predictions at X: (low, high), each shaped like X."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        preds = self.samples[:, :1] + self.samples[:, 1:2] * x[None, :] ** (-self.samples[:, 2:3])
        tail = 50.0 * (1.0 - self.confidence)
        return np.percentile(preds, tail, axis=0), np.percentile(preds, 100.0 - tail, axis=0)

    def as_row(self) -> dict[str, float]:
        """Coefficients and interval bounds as one flat table row."""
        row: dict[str, float] = {"n_points": self.n_points}
        for name in ("E", "A", "alpha"):
            lo, hi = self.intervals[name]
            row |= {name: getattr(self, name), f"{name}_low": lo, f"{name}_high": hi}
        return row


def _power_law_objective(theta: np.ndarray, lx: np.ndarray, ly: np.ndarray,
                         delta: float) -> tuple[float, np.ndarray]:
    e, a, alpha = theta
    term = a - alpha * lx
    pred = np.logaddexp(e, term)
    w_e = expit(e - term)  # d pred / d e; d pred / d a = 1 − w_e
    loss, dh = _huber(ly - pred, delta)
    n = len(ly)
    grad = -np.array([np.sum(dh * w_e), np.sum(dh * (1 - w_e)), np.sum(dh * (1 - w_e) * -lx)]) / n
    return float(loss.sum() / n), grad


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


def _minimize_from(objective: Callable, args: tuple, starts: list[np.ndarray], bounds: list[tuple],
                   n_descents: int) -> tuple[np.ndarray, float]:
    """L-BFGS-B from the ``n_descents`` starts of the grid with the lowest initial loss; the best result."""
    initial = [objective(s, *args)[0] for s in starts]
    best, best_loss = starts[int(np.argmin(initial))], float(np.min(initial))
    for i in np.argsort(initial)[:n_descents]:
        res = minimize(objective, starts[i], args=args, jac=True, method="L-BFGS-B", bounds=bounds)
        if res.fun < best_loss:
            best, best_loss = res.x, float(res.fun)
    return best, best_loss


def _fit_power_law_once(lx: np.ndarray, ly: np.ndarray, starts: list[np.ndarray], delta: float,
                        n_descents: int = 8) -> tuple[np.ndarray, float]:
    bounds = [_BOUNDS_E, _BOUNDS_LOG_COEF, _BOUNDS_EXPONENT]
    return _minimize_from(_power_law_objective, (lx, ly, delta), starts, bounds, n_descents)


def _power_law_starts(ly: np.ndarray) -> list[np.ndarray]:
    lo, mid = ly.min(), np.median(ly)
    es = [lo + np.log(f) for f in (0.01, 0.5, 0.9)]
    as_ = [mid + np.log(f) for f in (0.05, 0.3, 1.0)]
    alphas = [0.05, 0.2, 0.5, 1.0, 2.0]
    return [np.array(s) for s in itertools.product(es, as_, alphas)]


@_one_blas_thread
def fit_power_law(x: np.ndarray, y: np.ndarray, *, delta: float = HUBER_DELTA, n_bootstrap: int = 200,
                  confidence: float = 0.95, seed: int = 0) -> PowerLawFit:
    """Fit L = E + A·X^(−α) to positive points (x, y), e.g. X = parameters or FLOPs, y = loss.

    ``n_bootstrap`` resamples (0: intervals collapse onto the point estimate). Raises ReportInputError on
    fewer than 3 distinct X values or non-positive input.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _check_points(x, y, "power-law fit", 3)
    shift = float(np.mean(np.log(x)))
    lx, ly = np.log(x) - shift, np.log(y)
    starts = _power_law_starts(ly)
    theta, loss = _fit_power_law_once(lx, ly, starts, delta)

    def unscale(t: np.ndarray) -> np.ndarray:  # (e, a', α) at X / x_ref → (E, A, α) at X
        return np.array([np.exp(t[0]), np.exp(t[1] + t[2] * shift), t[2]])

    rng = np.random.default_rng(seed)
    samples = []
    # Each resample restarts from its own best grid points: started at the full-data optimum, L-BFGS barely
    # moves on the near-L1 Huber objective and the intervals come out far too narrow (measured: 2/12 coverage).
    local_starts = starts
    while len(samples) < n_bootstrap:
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(lx[idx])) < 3:
            continue
        t, _ = _fit_power_law_once(lx[idx], ly[idx], local_starts, delta, n_descents=3)
        samples.append(unscale(t))
    point = unscale(theta)
    samples_arr = np.array(samples) if samples else point[None, :]
    tail = 50.0 * (1.0 - confidence)
    lows, highs = np.percentile(samples_arr, tail, axis=0), np.percentile(samples_arr, 100 - tail, axis=0)
    intervals = {name: (float(lows[i]), float(highs[i])) for i, name in enumerate(("E", "A", "alpha"))}
    return PowerLawFit(E=float(point[0]), A=float(point[1]), alpha=float(point[2]), intervals=intervals,
                       n_points=len(x), loss=loss, confidence=confidence, samples=samples_arr)


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

    def predict(self, n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n ** (-self.alpha) + self.B * d ** (-self.beta)

    def as_row(self) -> dict[str, float]:
        row: dict[str, float] = {"n_points": self.n_points}
        for name in ("E", "A", "alpha", "B", "beta"):
            lo, hi = self.intervals[name]
            row |= {name: getattr(self, name), f"{name}_low": lo, f"{name}_high": hi}
        return row


def _chinchilla_objective(theta: np.ndarray, ln: np.ndarray, ld: np.ndarray, ly: np.ndarray,
                          delta: float) -> tuple[float, np.ndarray]:
    e, a, alpha, b, beta = theta
    terms = np.stack([np.full_like(ln, e), a - alpha * ln, b - beta * ld])  # (3, P)
    pred = np.logaddexp.reduce(terms, axis=0)
    w = np.exp(terms - pred)  # softmax weights = d pred / d (e, a, b)
    loss, dh = _huber(ly - pred, delta)
    n = len(ly)
    grad = -np.array([
        np.sum(dh * w[0]), np.sum(dh * w[1]), np.sum(dh * w[1] * -ln),
        np.sum(dh * w[2]), np.sum(dh * w[2] * -ld),
    ]) / n
    return float(loss.sum() / n), grad


@_one_blas_thread
def fit_chinchilla(n: np.ndarray, d: np.ndarray, y: np.ndarray, *, delta: float = HUBER_DELTA,
                   n_bootstrap: int = 100, confidence: float = 0.95, seed: int = 0) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^α + B/D^β to points from several model sizes N, each at several data sizes D.

    Needs at least 3 distinct N and 3 distinct D (the curves of a width/depth sweep give many D per N).
    """
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, y))
    _check_points(n, y, "Chinchilla fit (N)", 3)
    _check_points(d, y, "Chinchilla fit (D)", 3)
    shift_n, shift_d = float(np.mean(np.log(n))), float(np.mean(np.log(d)))
    ln, ld, ly = np.log(n) - shift_n, np.log(d) - shift_d, np.log(y)
    lo, mid = ly.min(), np.median(ly)
    starts = [np.array(s) for s in itertools.product(
        [lo + np.log(f) for f in (0.01, 0.5, 0.9)], [mid + np.log(f) for f in (0.1, 0.5)], [0.1, 0.5, 1.0],
        [mid + np.log(f) for f in (0.1, 0.5)], [0.1, 0.5, 1.0])]
    bounds = [_BOUNDS_E, _BOUNDS_LOG_COEF, _BOUNDS_EXPONENT, _BOUNDS_LOG_COEF, _BOUNDS_EXPONENT]

    def fit_once(idx: np.ndarray, starts: list[np.ndarray], n_descents: int) -> tuple[np.ndarray, float]:
        args = (ln[idx], ld[idx], ly[idx], delta)
        return _minimize_from(_chinchilla_objective, args, starts, bounds, n_descents)

    def unscale(t: np.ndarray) -> np.ndarray:
        return np.array([np.exp(t[0]), np.exp(t[1] + t[2] * shift_n), t[2],
                         np.exp(t[3] + t[4] * shift_d), t[4]])

    theta, loss = fit_once(np.arange(len(y)), starts, 10)
    rng = np.random.default_rng(seed)
    samples = []
    while len(samples) < n_bootstrap:
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(ln[idx])) < 3 or len(np.unique(ld[idx])) < 3:
            continue
        samples.append(unscale(fit_once(idx, starts, 3)[0]))
    point = unscale(theta)
    samples_arr = np.array(samples) if samples else point[None, :]
    tail = 50.0 * (1.0 - confidence)
    lows, highs = np.percentile(samples_arr, tail, axis=0), np.percentile(samples_arr, 100 - tail, axis=0)
    names = ("E", "A", "alpha", "B", "beta")
    return ChinchillaFit(*map(float, point), intervals={k: (float(lows[i]), float(highs[i]))
                                                        for i, k in enumerate(names)},
                         n_points=len(y), loss=loss, confidence=confidence)


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

# The 3 coefficients of L = E + A·X^−α leave no residual degree of freedom on 3 points, and the bootstrap of 4
# points resamples mostly duplicates; 2 spare points is the least at which an interval means anything.
SPARE_POINTS = 2
_BOUND_TOLERANCE = 1e-3  # of the bound's range, in the optimiser's coordinates
_COLLAPSE_RTOL = 1e-4
# An exponent whose 95% interval spans more than this factor is not determined by the data: α ∈ [0.02, 1.7]
# says anything from "no scaling" to "fast scaling", and a curve drawn through its point value is noise.
EXPONENT_MAX_SPAN = 10.0


def _fit_space(name: str, value: float) -> tuple[float, tuple[float, float]]:
    """A reported coefficient back in the optimiser's coordinates, with that coordinate's bounds."""
    if name in ("alpha", "beta"):
        return value, _BOUNDS_EXPONENT
    if name == "E":
        return math.log(value) if value > 0 else -math.inf, _BOUNDS_E
    return math.log(value) if value > 0 else -math.inf, _BOUNDS_LOG_COEF


def fit_problem(fit: PowerLawFit | ChinchillaFit, n_coefficients: int | None = None) -> str | None:
    """Why ``fit`` must not be presented as a law, or None when it may be.

    Refused when it has fewer than ``n_coefficients + SPARE_POINTS`` points; when the point estimate of the
    exponent or E sits on its optimiser bound (α = 1e-4 means "no scaling found", E = e^−30 "no floor found");
    when a bootstrap interval collapsed (width ≤ 1e-4 relative: the resamples did not vary, e.g. zero resamples
    or every resample at one optimum); when the exponent's interval reaches its bound (the bound, not the
    data, ends the interval); or when it spans more than a factor ``EXPONENT_MAX_SPAN`` (undetermined).
    """
    names = ("E", "A", "alpha") if isinstance(fit, PowerLawFit) else ("E", "A", "alpha", "B", "beta")
    k = n_coefficients or len(names)
    if fit.n_points < k + SPARE_POINTS:
        return (f"too few points ({fit.n_points} for {k} coefficients; needs at least {k + SPARE_POINTS})")
    for name in names:
        value = getattr(fit, name)
        if name in ("A", "B"):
            continue  # their bound is on log A at the conditioned scale: only E and the exponents are checked
        coord, (lo, hi) = _fit_space(name, value)
        tol = _BOUND_TOLERANCE * (hi - lo)
        if coord <= lo + tol or coord >= hi - tol:
            return f"{_label(name)} = {value:.3g} sits on its bound"
    for name in names:
        low, high = fit.intervals[name]
        value = getattr(fit, name)
        if high - low <= _COLLAPSE_RTOL * max(abs(value), 1e-300):
            return (f"bootstrap interval of {_label(name)} collapsed to [{low:.4g}, {high:.4g}]: the resamples "
                    "do not vary, so the data do not constrain it")
    for name in ("alpha", "beta") if "beta" in names else ("alpha",):
        low, high = fit.intervals[name]
        lo, hi = _BOUNDS_EXPONENT
        tol = _BOUND_TOLERANCE * (hi - lo)
        if low <= lo + tol or high >= hi - tol:
            return f"bootstrap interval of {_label(name)} [{low:.3g}, {high:.3g}] reaches the bound [{lo:g}, {hi:g}]"
        if high > EXPONENT_MAX_SPAN * low:
            return (f"bootstrap interval of {_label(name)} [{low:.3g}, {high:.3g}] spans a factor {high / low:.0f} "
                    f"(> {EXPONENT_MAX_SPAN:g}): the data do not determine the exponent")
    return None


def _label(name: str) -> str:
    return {"alpha": "α", "beta": "β"}.get(name, name)


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
    """Runs whose ``metric`` (as its error, see :func:`to_error`) changed by at most ``rtol`` relative, or by
    at most twice the recorded estimator noise, over the second half of training (last value against the
    value interpolated at half the final step). L(N) is a statement about trained-out models; a run still
    falling fast measures its step budget, not its size."""
    from analysis.seeds import run_noise

    noise = run_noise(frame, metric)
    out = []
    for run, curve in frame.dropna(subset=[metric]).groupby("run", sort=False):
        curve = curve[curve["step"] > 0]
        if len(curve) < 2:
            continue
        steps = curve["step"].to_numpy(float)
        error = to_error(metric, curve[metric].to_numpy())[0]
        half = float(np.interp(np.log(steps[-1] / 2), np.log(steps), error))
        change = abs(error[-1] - half)
        allowed = max(rtol * abs(error[-1]), 2 * float(np.nan_to_num(noise.get(run, np.nan))))
        if steps[0] <= steps[-1] / 2 and change <= allowed:
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
        if n_points < n_coefficients + SPARE_POINTS:  # known before fitting; the bootstrap is the slow part
            refuse(law, f"too few points ({n_points} for {n_coefficients} coefficients; needs at least "
                        f"{n_coefficients + SPARE_POINTS})")
            return None
        try:
            result = fit()
        except ReportInputError as exc:
            refuse(law, str(exc))
            return None
        problem = fit_problem(getattr(result, "fit", result), n_coefficients)  # type: ignore[arg-type]
        if problem is not None:
            refuse(law, problem)
            return None
        return result

    finals = final_values(frame, metric).dropna(subset=["params"])
    converged = converged_runs(frame, metric)
    finals = finals[finals["run"].isin(converged)]
    params_fit = extrapolation = None
    if finals.empty:
        refused[LAW_N] = (f"no run converged (every run's {target} still changed by more than "
                          f"{100 * CONVERGED_RTOL:.0f}% and twice its estimator noise over its second half)")
        refused[LAW_BACKTEST] = refused[LAW_N]
    else:
        error = to_error(metric, finals[metric].to_numpy())[0]
        n = finals["params"].to_numpy()
        params_fit = attempt(LAW_N, lambda: fit_power_law(n, error, n_bootstrap=n_bootstrap, seed=seed), 3,
                             len(n))
        extrapolation = attempt(LAW_BACKTEST, lambda: extrapolation_check(
            n, error, n_bootstrap=n_bootstrap, seed=seed), 3, int((n < n.max()).sum()))

    curves = curves_by_config(frame, metric)
    curves["_target"] = to_error(metric, curves["mean"].to_numpy())[0]
    frontier = compute_frontier(curves.rename(columns={"config": "run"}), "flops", "_target")
    compute_fit = attempt(LAW_C, lambda: fit_power_law(frontier["x"].to_numpy(), frontier["y"].to_numpy(),
                                                        n_bootstrap=n_bootstrap, seed=seed), 3, len(frontier))

    points = frame.dropna(subset=[metric, "params", "examples"]).copy()
    points = points[points["examples"] > 0]
    points["_target"] = to_error(metric, points[metric].to_numpy())[0]
    if len(points) > max_chinchilla_points:
        points = points.iloc[np.linspace(0, len(points) - 1, max_chinchilla_points).astype(int)]
    chinchilla = attempt(LAW_ND, lambda: fit_chinchilla(
        points["params"].to_numpy(), points["examples"].to_numpy(), points["_target"].to_numpy(),
        n_bootstrap=max(20, n_bootstrap // 4), seed=seed), 5, len(points))
    return ScalingFits(metric=metric, target=target, params=params_fit, compute=compute_fit,  # type: ignore[arg-type]
                       extrapolation=extrapolation, chinchilla=chinchilla, refused=refused,  # type: ignore[arg-type]
                       frontier=frontier, converged=tuple(converged))
