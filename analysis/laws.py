"""The scaling-law fitting engine: L(X) = E + A·X^−α and L(N, D) = E + A/N^α + B/D^β, fitted many at a time.

Objective (Hoffmann et al. 2022; Besiroglu et al. 2024): the mean Huber loss, δ = 1e-3, of the log residuals
log y − log L̂, each point weighted (a pairs bootstrap weights points by how often it drew them).

Search, vectorised over every fit of a batch (a point fit and its bootstrap resamples are one batch):

1. Variable projection on a grid of exponents: for fixed exponents L̂ is linear in (E, A, B) ≥ 0, solved
   exactly by non-negative least squares of the relative residuals (y − L̂)/y (the first-order form of the
   log residual) over every active set; each grid point is scored by the true Huber objective.
2. Polish from the best grid points: Levenberg–Marquardt on the Huber objective by iteratively reweighted
   least squares (weights min(1, δ/|r|), i.e. Huber's ψ(r)/r), every coefficient and exponent free within
   its bounds (E, A, B ≥ 0; exponents in :data:`EXPONENT_BOUNDS`); a step is kept only where it lowers the
   objective, so the polish never ends above the grid.

Predictors and targets are divided by their geometric means inside the fit (conditioning only); reported
coefficients are in the original units. :func:`fit_problem` says why a fit must not be presented.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import comb

HUBER_DELTA = 1e-3
EXPONENT_BOUNDS = (1e-3, 4.0)
# Exponent grid of the variable-projection stage (log-spaced, inside the bounds).
GRID_1D = np.geomspace(0.01, 3.0, 40)
GRID_2D = np.geomspace(0.01, 3.0, 14)
POINTS_PER_COEFFICIENT = 2
MIN_DISTINCT = 3  # distinct values each predictor needs (a curve, not a line through two points)
MAX_SPAN = 10.0  # an interval of E or an exponent wider than this factor does not identify it
RUNS_ALPHA = 0.05
_E_FLOOR = 1e-6  # E below this fraction of the data's geometric mean is E = 0, on its bound
_BOUND_RTOL = 1e-2


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class RunsTest:
    """Wald–Wolfowitz runs test on the signs of residuals in order of a predictor.

    ``runs``: sign runs among ``n_pos`` positive and ``n_neg`` negative residuals; ``p_value``: exact
    P(runs ≤ observed) under a random order (few runs = residuals that stay on one side = a curve the law
    misses); ``order``: the predictor the residuals were ordered by.
    """

    runs: int
    n_pos: int
    n_neg: int
    p_value: float
    order: str

    @property
    def systematic(self) -> bool:
        return self.p_value < RUNS_ALPHA

    def text(self) -> str:
        return (f"{self.runs} runs of residual signs over {self.n_pos + self.n_neg} points ordered by "
                f"{self.order} (Wald–Wolfowitz p = {self.p_value:.2g})")


@dataclass(frozen=True)
class Fit:
    """A fitted law with its bootstrap.

    ``point``: coefficients in original units, (p,), in the order of :attr:`names` (``E, A, alpha`` or
    ``E, A, alpha, B, beta``); ``samples``: the bootstrap fits, (n_bootstrap, p); ``x``: the predictors
    of the fitted points, (n, m); ``y``: their values, (n,); ``residuals``: log y − log L̂ at the point fit;
    ``variables``: the predictors' names (``("C",)``, ``("N", "D")``); ``objective``: mean Huber loss.
    """

    point: np.ndarray
    samples: np.ndarray
    x: np.ndarray
    y: np.ndarray
    residuals: np.ndarray
    variables: tuple[str, ...]
    objective: float
    confidence: float = 0.95
    runs: tuple[RunsTest, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return ("E", "A", "alpha") if len(self.variables) == 1 else ("E", "A", "alpha", "B", "beta")

    @property
    def coefficients(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.point, strict=True)}

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        if not len(self.samples):
            return {name: (math.nan, math.nan) for name in self.names}
        tail = 50.0 * (1.0 - self.confidence)
        low, high = np.percentile(self.samples, [tail, 100.0 - tail], axis=0)
        return {name: (float(lo), float(hi)) for name, lo, hi in zip(self.names, low, high, strict=True)}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """L̂ at predictors ``x``, (q, m) or (q,) for one predictor: (q,)."""
        return predict(self.point[None], _as_2d(x))[0]

    def predict_samples(self, x: np.ndarray) -> np.ndarray:
        """Every bootstrap fit's L̂ at ``x``: (n_bootstrap, q)."""
        return predict(self.samples, _as_2d(x))

    def predict_interval(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band of the bootstrap fits' predictions at ``x``: (low, high), each (q,)."""
        preds = self.predict_samples(x)
        tail = 50.0 * (1.0 - self.confidence)
        return np.percentile(preds, tail, axis=0), np.percentile(preds, 100.0 - tail, axis=0)


def predict(coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
    """L̂ for each row of ``coefficients`` (R, p) (order of :attr:`Fit.names`) at ``x`` (q, m): (R, q)."""
    out = coefficients[:, :1] + coefficients[:, 1:2] * x[None, :, 0] ** -coefficients[:, 2:3]
    if x.shape[1] == 2:
        out = out + coefficients[:, 3:4] * x[None, :, 1] ** -coefficients[:, 4:5]
    return out


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[:, None] if x.ndim == 1 else x


# ------------------------------------------------------------------------------------------------- engine


def _huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _model(theta: np.ndarray, lu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """θ = [E, A_1..A_m, α_1..α_m] per row (R, 1 + 2m) at log predictors lu (n, m): L̂ (R, n), the powers
    u^−α (R, n, m) and the terms A·u^−α (R, n, m)."""
    m = lu.shape[1]
    powers = np.exp(-theta[:, None, 1 + m:] * lu[None])
    terms = theta[:, None, 1:1 + m] * powers
    return np.maximum(theta[:, :1] + terms.sum(-1), 1e-300), powers, terms


def _objective(theta: np.ndarray, lu: np.ndarray, lt: np.ndarray, w: np.ndarray) -> np.ndarray:
    pred = _model(theta, lu)[0]
    return (w * _huber(lt - np.log(pred))).sum(-1) / w.sum(-1)


def _grid_starts(lu: np.ndarray, t: np.ndarray, w: np.ndarray, n_starts: int) -> np.ndarray:
    """Variable projection over the exponent grid: the ``n_starts`` best grid fits of each row of ``t``
    (R, n), as θ (R, n_starts, 1 + 2m)."""
    n, m = lu.shape
    grid = (GRID_1D[:, None] if m == 1 else np.array(list(itertools.product(GRID_2D, GRID_2D))))  # (G, m)
    phi = np.concatenate([np.ones((len(grid), n, 1)), np.exp(-grid[:, None, :] * lu[None])], axis=2)  # (G,n,k)
    k = m + 1
    outer = (phi[..., :, None] * phi[..., None, :]).transpose(1, 0, 2, 3).reshape(n, -1)  # (n, G·k·k)
    gram = ((w / t**2) @ outer).reshape(len(t), len(grid), k, k)  # Σ w/t² φφᵀ
    rhs = ((w / t) @ phi.transpose(1, 0, 2).reshape(n, -1)).reshape(len(t), len(grid), k)  # Σ w/t φ
    best = np.full(gram.shape[:2], np.inf)
    coef = np.zeros(gram.shape[:3])
    for size in range(1, k + 1):
        for subset in itertools.combinations(range(k), size):
            s = list(subset)
            g = gram[:, :, s][:, :, :, s]
            g = g + 1e-12 * np.trace(g, axis1=2, axis2=3)[..., None, None] * np.eye(size)
            c = _solve_small(g, rhs[:, :, s])
            loss = -(c * rhs[:, :, s]).sum(-1)  # weighted squared relative error, up to the constant Σw
            better = (c >= 0).all(-1) & (loss < best)
            best = np.where(better, loss, best)
            full = np.zeros_like(coef)
            full[:, :, s] = c
            coef = np.where(better[..., None], full, coef)
    pred = np.maximum(np.einsum("gnk,rgk->rgn", phi, coef), 1e-300)
    score = (w[:, None] * _huber(np.log(t)[:, None] - np.log(pred))).sum(-1)
    order = np.argsort(score, axis=1)[:, :n_starts]
    picked = np.take_along_axis(coef, order[..., None], axis=1)  # (R, S, k)
    exps = grid[order]  # (R, S, m)
    return np.concatenate([picked, exps], axis=-1)


def _solve_small(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a·c = b for stacks of 1×1, 2×2 or 3×3 systems (..., k, k) by Cramer's rule: numpy's batched
    solve costs ~1 µs per tiny system, which would dominate the grid stage."""
    k = a.shape[-1]
    if k == 1:
        return b / a[..., 0]
    if k == 2:
        det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
        c0 = (b[..., 0] * a[..., 1, 1] - a[..., 0, 1] * b[..., 1]) / det
        c1 = (a[..., 0, 0] * b[..., 1] - b[..., 0] * a[..., 1, 0]) / det
        return np.stack([c0, c1], axis=-1)
    (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = (
        (a[..., i, 0], a[..., i, 1], a[..., i, 2]) for i in range(3))
    m0, m1, m2 = a11 * a22 - a12 * a21, a12 * a20 - a10 * a22, a10 * a21 - a11 * a20  # cofactors of row 0
    det = a00 * m0 + a01 * m1 + a02 * m2
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    c0 = (b0 * m0 + a01 * (a12 * b2 - b1 * a22) + a02 * (b1 * a21 - a11 * b2)) / det
    c1 = (a00 * (b1 * a22 - a12 * b2) + b0 * m1 + a02 * (a10 * b2 - b1 * a20)) / det
    c2 = (a00 * (a11 * b2 - b1 * a21) + a01 * (b1 * a20 - a10 * b2) + b0 * m2) / det
    return np.stack([c0, c1, c2], axis=-1)


def _polish(theta: np.ndarray, lu: np.ndarray, lt: np.ndarray, w: np.ndarray, tol: float, max_iter: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt with Huber IRLS weights from θ (R, p); returns θ and the objective (R,).

    A row stops when an accepted step lowers its objective by less than ``tol`` (relative) or its damping
    exceeds 1e10; every row stops after ``max_iter`` steps. (IRLS converges linearly on the near-L1 Huber
    objective: a resample needs its coefficients to ~1e-4, not to machine precision.)"""
    m = lu.shape[1]
    p = 1 + 2 * m
    lo = np.r_[np.zeros(1 + m), np.full(m, EXPONENT_BOUNDS[0])]
    hi = np.r_[np.full(1 + m, np.inf), np.full(m, EXPONENT_BOUNDS[1])]
    theta = np.clip(theta, lo, hi)
    f = _objective(theta, lu, lt, w)
    lam = np.full(len(theta), 1e-3)
    eye = np.eye(p)
    active = np.arange(len(theta))  # rows still improving; converged rows drop out
    for _ in range(max_iter):
        th, lt_a, w_a, f_a, lam_a = theta[active], lt[active], w[active], f[active], lam[active]
        pred, powers, terms = _model(th, lu)
        r = lt_a - np.log(pred)
        # dr/dθ = −(dL̂/dθ)/L̂: dL̂/dE = 1, dL̂/dA = u^−α, dL̂/dα = −A·u^−α·log u
        jac = -np.concatenate([np.ones_like(pred)[..., None], powers, -terms * lu[None]], axis=-1) / pred[..., None]
        omega = w_a * np.minimum(1.0, HUBER_DELTA / np.maximum(np.abs(r), 1e-300))
        weighted = (jac * omega[..., None]).transpose(0, 2, 1)  # (rows, p, n)
        jtj = weighted @ jac
        grad = (weighted @ r[..., None])[..., 0]
        diag = np.einsum("rii->ri", jtj)
        damped = jtj + (lam_a[:, None] * diag + 1e-12 * (diag.sum(-1, keepdims=True) + 1e-300))[..., None] * eye
        step = -np.linalg.solve(damped, grad[..., None])[..., 0]
        trial = np.clip(th + step, lo, hi)
        f_trial = _objective(trial, lu, lt_a, w_a)
        better = f_trial < f_a
        gain = np.where(better, (f_a - f_trial) / np.maximum(f_a, 1e-300), 0.0)
        theta[active] = np.where(better[:, None], trial, th)
        f[active] = np.where(better, f_trial, f_a)
        lam[active] = np.where(better, lam_a / 3.0, lam_a * 4.0)
        # Done: an accepted step that gained < 1e-10 relative, or a damping so large no step moves.
        done = (better & (gain < tol)) | (lam[active] > 1e10)
        active = active[~done]
        if not len(active):
            break
    return theta, f


def fit_batch(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, n_starts: int = 2,
              tol: float = 1e-6, max_iter: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit one law per row of ``y``.

    x: predictors shared by every fit, (n, m) or (n,), positive; y: values, (R, n) or (n,), positive;
    weights: per-point weights, (R, n) or None (all 1); ``n_starts`` grid points polished per fit, ``tol`` and
    ``max_iter`` as in :func:`_polish`. Returns coefficients in original units (R, p) in the
    order of :attr:`Fit.names`, the mean Huber objective (R,) and the log residuals (R, n).
    """
    x = _as_2d(x)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    w = np.ones_like(y) if weights is None else np.broadcast_to(np.asarray(weights, float), y.shape)
    n, m = x.shape
    ref = np.exp(np.log(x).mean(0))
    scale = float(np.exp(np.log(y).mean()))
    lu, t = np.log(x / ref), y / scale
    # The grid stage holds (rows, grid points, n) arrays: chunk the rows to bound its memory (~16 MB).
    grid_size = len(GRID_1D) if m == 1 else len(GRID_2D) ** 2
    chunk = max(1, int(2e6 // (grid_size * n)))
    starts = np.concatenate([_grid_starts(lu, t[i:i + chunk], w[i:i + chunk], n_starts)
                             for i in range(0, len(t), chunk)])  # (R, S, p)
    r, s, p = starts.shape
    theta, f = _polish(starts.reshape(r * s, p), lu, np.repeat(np.log(t), s, axis=0), np.repeat(w, s, axis=0),
                       tol, max_iter)
    best = f.reshape(r, s).argmin(1)
    theta = theta.reshape(r, s, p)[np.arange(r), best]
    f = f.reshape(r, s)[np.arange(r), best]
    residuals = np.log(t) - np.log(_model(theta, lu)[0])
    exps = theta[:, 1 + m:]
    amps = theta[:, 1:1 + m] * scale * ref[None] ** exps
    out = np.column_stack([theta[:, 0] * scale, amps[:, 0], exps[:, 0]])
    if m == 2:
        out = np.column_stack([out, amps[:, 1], exps[:, 1]])
    return out, f, residuals


def fit(x: np.ndarray, y: np.ndarray, variables: tuple[str, ...], *, replicates: np.ndarray | None = None,
        n_bootstrap: int = 0, seed: int = 0, confidence: float = 0.95) -> Fit:
    """Fit the law of ``variables`` (one predictor: E + A·X^−α; two: E + A/N^α + B/D^β) to points (x, y).

    Bootstrap: ``replicates`` (R, n) are resampled values of the same points (e.g. seed means redrawn over
    seeds); without them, ``n_bootstrap`` pairs-bootstrap resamples (points drawn with replacement, as
    multiplicity weights; resamples with fewer than :data:`MIN_DISTINCT` distinct values of a predictor are
    redrawn). Raises ValueError on non-positive or non-finite input or a shape mismatch.
    """
    x, y = _as_2d(x), np.asarray(y, dtype=float)
    if x.shape != (len(y), len(variables)):
        raise ValueError(f"x has shape {x.shape}; expected ({len(y)}, {len(variables)}) for {variables}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError("law fit: x and y must be finite and positive")
    point, objective, residuals = fit_batch(x, y, n_starts=4, tol=1e-12, max_iter=400)
    if replicates is not None:
        samples = fit_batch(x, replicates)[0] if len(replicates) else np.zeros((0, point.shape[1]))
    elif n_bootstrap:
        samples = fit_batch(x, np.broadcast_to(y, (n_bootstrap, len(y))), _pairs_weights(x, n_bootstrap, seed))[0]
    else:
        samples = np.zeros((0, point.shape[1]))
    runs = tuple(runs_test(x[:, j], residuals[0], name) for j, name in enumerate(variables))
    return Fit(point=point[0], samples=samples, x=x, y=y, residuals=residuals[0], variables=variables,
               objective=float(objective[0]), confidence=confidence, runs=runs)


def _pairs_weights(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Multiplicities of ``n`` pairs-bootstrap resamples of the rows of x, (n, len(x)); a resample keeps at
    least min(:data:`MIN_DISTINCT`, available) distinct values of every predictor (others are redrawn)."""
    rng = np.random.default_rng(seed)
    size = len(x)
    kept: list[np.ndarray] = []
    while sum(len(k) for k in kept) < n:
        draws = rng.integers(0, size, (2 * n + 8, size))
        counts = np.zeros((len(draws), size))
        np.add.at(counts, (np.arange(len(draws))[:, None], draws), 1.0)
        ok = np.ones(len(draws), dtype=bool)
        for j in range(x.shape[1]):
            values, ids = np.unique(x[:, j], return_inverse=True)
            seen = (counts @ (ids[:, None] == np.arange(len(values))[None])) > 0
            ok &= seen.sum(1) >= min(MIN_DISTINCT, len(values))
        kept.append(counts[ok])
    return np.concatenate(kept)[:n] if n else np.zeros((0, size))


# ---------------------------------------------------------------------------------------------- runs test


def runs_test(x: np.ndarray, residuals: np.ndarray, order: str = "x") -> RunsTest:
    """Wald–Wolfowitz runs test of ``residuals`` ordered by ``x`` (ties averaged; zero residuals dropped).

    p_value = P(runs ≤ observed) for a random arrangement of the same signs (exact), 1 when one sign only.
    """
    values = np.unique(x)
    mean = np.array([residuals[x == v].mean() for v in values])
    signs = np.sign(mean[mean != 0])
    n_pos, n_neg = int((signs > 0).sum()), int((signs < 0).sum())
    runs = int(1 + np.count_nonzero(np.diff(signs))) if len(signs) else 0
    return RunsTest(runs=runs, n_pos=n_pos, n_neg=n_neg, p_value=runs_p_value(runs, n_pos, n_neg), order=order)


def runs_p_value(runs: int, n_pos: int, n_neg: int) -> float:
    """Exact P(R ≤ runs) for R the number of runs in a random order of n_pos '+' and n_neg '−'."""
    if n_pos == 0 or n_neg == 0:
        return 1.0
    total = comb(n_pos + n_neg, n_pos, exact=True)
    count = 0
    for r in range(2, runs + 1):
        k = r // 2
        if r % 2 == 0:
            count += 2 * comb(n_pos - 1, k - 1, exact=True) * comb(n_neg - 1, k - 1, exact=True)
        else:
            count += (comb(n_pos - 1, k, exact=True) * comb(n_neg - 1, k - 1, exact=True)
                      + comb(n_pos - 1, k - 1, exact=True) * comb(n_neg - 1, k, exact=True))
    return count / total


# ------------------------------------------------------------------------------------------------ refusal


def fit_problem(f: Fit, n_points: int | None = None) -> str | None:
    """Why ``f`` must not be presented as a law (checked in this order), or None.

    - fewer than :data:`POINTS_PER_COEFFICIENT` points per coefficient (``n_points``: the independent points,
      e.g. seed-averaged cells; default the fitted points), or a predictor with fewer than
      :data:`MIN_DISTINCT` distinct values;
    - no bootstrap (no interval);
    - :func:`identification_problem`;
    - systematic residuals: a runs test with p < :data:`RUNS_ALPHA` (Bonferroni over the predictors).

    The last two are both reported when both hold (joined by "; ").
    """
    k = len(f.names)
    n = len(f.y) if n_points is None else n_points
    if n < POINTS_PER_COEFFICIENT * k:
        return f"too few points ({n} for {k} coefficients; needs at least {POINTS_PER_COEFFICIENT * k})"
    for j, name in enumerate(f.variables):
        distinct = len(np.unique(f.x[:, j]))
        if distinct < MIN_DISTINCT:
            plural = "s" if distinct != 1 else ""
            return f"{name} takes {distinct} distinct value{plural} (needs at least {MIN_DISTINCT})"
    if not len(f.samples):
        return "no bootstrap resamples: nothing bounds the coefficients"
    problems = [identification_problem(f.coefficients, f.intervals, float(np.exp(np.log(f.y).mean())),
                                       f.variables)]
    threshold = RUNS_ALPHA / len(f.runs) if f.runs else RUNS_ALPHA
    problems += [f"residuals are systematic: {test.text()}" for test in f.runs if test.p_value < threshold]
    found = [p for p in problems if p]
    return "; ".join(found) if found else None


def identification_problem(coefficients: dict[str, float], intervals: dict[str, tuple[float, float]],
                           scale: float, variables: tuple[str, ...] = ("X",)) -> str | None:
    """Why E or an exponent is not identified, or None.

    An amplitude (A, B) of 0 (no dependence on that predictor); E or an exponent on its bound (E = 0: no
    irreducible loss found, i.e. E below 1e-6 of ``scale``, the data's geometric mean; α at 1e-3 or 4); E's or
    an exponent's bootstrap interval reaching its bound or spanning more than :data:`MAX_SPAN`×.
    """
    c = coefficients
    for amp, var in zip(("A", "B"), variables, strict=False):
        if c[amp] <= 0:
            return f"{amp} = 0: the fit found no dependence on {var}"
    if c["E"] <= _E_FLOOR * scale:
        return f"E = {c['E']:.3g} sits on its bound 0: no irreducible loss is identified"
    lo, hi = EXPONENT_BOUNDS
    exponents = [name for name in ("alpha", "beta") if name in c]
    for name in exponents:
        if c[name] <= lo * (1 + _BOUND_RTOL) or c[name] >= hi * (1 - _BOUND_RTOL):
            return f"{label(name)} = {c[name]:.3g} sits on its bound [{lo:g}, {hi:g}]"
    for name in ("E", *exponents):
        low, high = intervals[name]
        bound_low = _E_FLOOR * scale if name == "E" else lo * (1 + _BOUND_RTOL)
        if low <= bound_low or (name != "E" and high >= hi * (1 - _BOUND_RTOL)):
            where = "0" if name == "E" else f"[{lo:g}, {hi:g}]"
            return (f"{label(name)} is not identified: its bootstrap interval [{low:.3g}, {high:.3g}] reaches "
                    f"its bound {where}")
        if high > MAX_SPAN * low:
            return (f"{label(name)} is not identified: its bootstrap interval [{low:.3g}, {high:.3g}] spans a "
                    f"factor {high / low:.0f} (> {MAX_SPAN:g})")
    return None


def label(name: str) -> str:
    """Printed name of a coefficient: α, β, E, A, B."""
    return {"alpha": "α", "beta": "β"}.get(name, name)
