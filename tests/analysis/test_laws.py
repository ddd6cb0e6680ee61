"""analysis.laws: the vectorised engine finds the Huber optimum, recovers known laws within its intervals, and
refuses what the points cannot support."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from analysis import laws


def power_law_points(seed: int, n: int = 12, e: float = 0.5, a: float = 2e3, alpha: float = 0.3, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e9, 1e12, n)
    return x, (e + a * x**-alpha) * np.exp(rng.normal(0.0, noise, n))


def chinchilla_points(seed: int):
    rng = np.random.default_rng(seed)
    n, d = np.repeat(np.geomspace(1e5, 1e6, 5), 4), np.tile(np.geomspace(1e3, 1e5, 4), 5)
    y = (0.3 + 50 * n**-0.35 + 20 * d**-0.4) * np.exp(rng.normal(0, 0.005, 20))
    return np.column_stack([n, d]), y


def brute_force_objective(x: np.ndarray, y: np.ndarray) -> float:
    """The Huber objective's minimum by Nelder–Mead from a grid of starts, in log coordinates."""
    x = x[:, None] if x.ndim == 1 else x
    m = x.shape[1]
    ref = np.exp(np.log(x).mean(0))

    def objective(theta: np.ndarray) -> float:
        coef = np.r_[np.exp(theta[0]), np.exp(theta[1]), theta[2]]
        if m == 2:
            coef = np.r_[coef, np.exp(theta[3]), theta[4]]
        return float(laws._huber(np.log(y) - np.log(laws.predict(coef[None], x / ref)[0])).mean())

    best = np.inf
    for e, a, al in itertools.product(np.log([0.05, 0.3, 0.8]) + np.log(y.min()), np.log([0.1, 1.0]), [0.1, 0.4, 1]):
        start = [e, a + np.log(np.median(y)), al] + ([a + np.log(np.median(y)), al] if m == 2 else [])
        res = minimize(objective, start, method="Nelder-Mead",
                       options={"maxiter": 40000, "xatol": 1e-11, "fatol": 1e-16})
        best = min(best, res.fun)
    return best


@pytest.mark.parametrize("points", [power_law_points(0), chinchilla_points(1)], ids=["L(C)", "L(N, D)"])
def test_the_point_fit_is_the_huber_optimum(points):
    x, y = points
    variables = ("C",) if x.ndim == 1 else ("N", "D")
    f = laws.fit(x, y, variables)
    assert f.objective == pytest.approx(brute_force_objective(x, y), rel=1e-9)
    assert f.objective == pytest.approx(float(laws._huber(f.residuals).mean()), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_known_power_law_is_recovered_within_its_intervals(seed):
    x, y = power_law_points(seed)
    f = laws.fit(x, y, ("C",), n_bootstrap=1000, seed=seed)
    assert f.samples.shape == (1000, 3)
    for name, truth in (("E", 0.5), ("A", 2e3), ("alpha", 0.3)):
        low, high = f.intervals[name]
        assert low <= truth <= high, (name, f.intervals[name])
    assert laws.fit_problem(f) is None
    assert f.coefficients["alpha"] == pytest.approx(0.3, abs=0.02)


def test_a_two_variable_law_is_recovered():
    x, y = chinchilla_points(0)
    f = laws.fit(x, y, ("N", "D"), n_bootstrap=500)
    for name, truth in (("E", 0.3), ("alpha", 0.35), ("B", 20.0), ("beta", 0.4)):
        low, high = f.intervals[name]
        assert low <= truth <= high, (name, f.intervals[name])
    assert laws.fit_problem(f) is None


def test_replicates_are_fitted_row_by_row():
    x, y = power_law_points(3)
    replicates = y[None] * np.array([[1.0], [1.01], [0.99]])
    f = laws.fit(x, y, ("C",), replicates=replicates)
    # Scaling y scales E and A and leaves α alone; resamples stop at ~1e-4 of the optimum (1e-6 in objective).
    assert f.samples[:, 2] == pytest.approx(np.full(3, f.samples[0, 2]), rel=1e-9)
    assert f.samples[:, 0] == pytest.approx(f.samples[0, 0] * np.array([1.0, 1.01, 0.99]), rel=1e-9)
    assert f.samples[0] == pytest.approx(f.point, rel=1e-3)


def test_an_outlier_does_not_move_the_exponent():
    x, y = power_law_points(4)
    y[5] *= 3.0  # one diverged run
    assert laws.fit(x, y, ("C",)).coefficients["alpha"] == pytest.approx(0.3, abs=0.03)


def test_a_law_without_a_floor_is_refused_on_E():
    x, y = power_law_points(5, e=0.0)
    problem = laws.fit_problem(laws.fit(x, y, ("C",), n_bootstrap=300))
    assert problem is not None and problem.startswith("E ")
    assert "sits on its bound 0" in problem or "is not identified" in problem


def test_an_s_shaped_curve_is_refused_for_systematic_residuals():
    """A logistic step in log C (the untrained plateau, then the fall) is not a power law."""
    x = np.geomspace(1e8, 1e12, 16)
    y = (3.0 + 4.0 / (1.0 + (x / 1e10) ** 1.5)) * np.exp(np.random.default_rng(6).normal(0, 0.002, 16))
    problem = laws.fit_problem(laws.fit(x, y, ("C",), n_bootstrap=200))
    assert problem is not None and "residuals are systematic" in problem and "ordered by C" in problem


def test_too_few_points_and_values():
    x, y = power_law_points(7, n=5)
    assert laws.fit_problem(laws.fit(x, y, ("C",), n_bootstrap=50)) == (
        "too few points (5 for 3 coefficients; needs at least 6)")
    x = np.repeat([1e9, 1e10], 4)
    f = laws.fit(x, 1 + 10 * x**-0.1, ("C",), n_bootstrap=10)
    assert laws.fit_problem(f) == "C takes 2 distinct values (needs at least 3)"
    with pytest.raises(ValueError, match="finite and positive"):
        laws.fit(np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 0.5]), ("C",))


def test_identification_rules():
    ok = {"E": 1.0, "A": 5.0, "alpha": 0.3}
    assert laws.identification_problem(ok, {"E": (0.9, 1.1), "A": (4, 6), "alpha": (0.25, 0.35)}, 2.0) is None
    assert laws.identification_problem(ok, {"E": (0.05, 1.1), "A": (4, 6), "alpha": (0.25, 0.35)}, 2.0) == (
        "E is not identified: its bootstrap interval [0.05, 1.1] spans a factor 22 (> 10)")
    assert laws.identification_problem(ok, {"E": (0.9, 1.1), "A": (4, 6), "alpha": (0.2, 4.0)}, 2.0) == (
        "α is not identified: its bootstrap interval [0.2, 4] reaches its bound [0.001, 4]")
    assert laws.identification_problem({**ok, "alpha": 4.0}, {"E": (0.9, 1.1), "A": (4, 6), "alpha": (3, 4)},
                                       2.0) == "α = 4 sits on its bound [0.001, 4]"


@pytest.mark.parametrize(("runs", "n_pos", "n_neg", "expected"), [(2, 4, 4, 2 / 70), (3, 3, 2, 5 / 10), (2, 3, 0, 1.0)])
def test_runs_test_exact_p_values(runs, n_pos, n_neg, expected):
    assert laws.runs_p_value(runs, n_pos, n_neg) == pytest.approx(expected, rel=1e-12)


def test_runs_test_p_values_match_enumeration():
    n_pos, n_neg = 5, 4
    counts: dict[int, int] = {}
    for positions in itertools.combinations(range(n_pos + n_neg), n_pos):
        signs = np.full(n_pos + n_neg, -1)
        signs[list(positions)] = 1
        r = 1 + int(np.count_nonzero(np.diff(signs)))
        counts[r] = counts.get(r, 0) + 1
    total = sum(counts.values())
    for r in range(2, n_pos + n_neg + 1):
        expected = sum(v for k, v in counts.items() if k <= r) / total
        assert laws.runs_p_value(r, n_pos, n_neg) == pytest.approx(expected, rel=1e-12)


def test_runs_test_averages_ties_and_orders_by_x():
    x = np.array([3.0, 1.0, 2.0, 2.0, 4.0])
    residuals = np.array([0.1, -0.2, 0.3, -0.1, -0.4])  # by x: −0.2, mean(0.3, −0.1) = +0.1, +0.1, −0.4
    test = laws.runs_test(x, residuals, "C")
    assert (test.runs, test.n_pos, test.n_neg, test.order) == (3, 2, 2, "C")
