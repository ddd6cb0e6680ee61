"""analysis.fits recovers known power laws from noisy synthetic points, within its bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.collect import ReportInputError
from analysis.fits import compute_frontier, extrapolation_check, fit_chinchilla, fit_power_law, to_error


def noisy_power_law(seed: int, e: float = 0.5, a: float = 20.0, alpha: float = 0.3, n: int = 24):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e9, n)
    return x, (e + a * x**-alpha) * np.exp(rng.normal(0.0, 0.01, n))


@pytest.mark.parametrize("seed", [0, 1])
def test_power_law_recovers_coefficients_within_interval(seed):
    x, y = noisy_power_law(seed)
    fit = fit_power_law(x, y, n_bootstrap=60, seed=seed)
    for name, truth in (("E", 0.5), ("A", 20.0), ("alpha", 0.3)):
        low, high = fit.intervals[name]
        assert low <= truth <= high, (name, truth, fit.intervals[name])
    assert fit.alpha == pytest.approx(0.3, abs=0.05)
    assert pytest.approx(0.5, rel=0.05) == fit.E
    # The intervals are informative, not the whole bounded range.
    assert fit.intervals["alpha"][1] - fit.intervals["alpha"][0] < 0.2


def test_fit_is_robust_to_an_outlier():
    x, y = noisy_power_law(3)
    y[5] *= 3.0  # one diverged run
    fit = fit_power_law(x, y, n_bootstrap=0)
    assert fit.alpha == pytest.approx(0.3, abs=0.05)


def test_extrapolation_predicts_the_largest_configuration():
    x, y = noisy_power_law(4)
    check = extrapolation_check(x, y, n_bootstrap=40)
    assert check.held_out_x == x.max()
    assert abs(check.relative_error) < 0.03
    assert check.fit.n_points == len(x) - 1


def test_chinchilla_recovers_exponents():
    rng = np.random.default_rng(5)
    n = np.repeat(np.geomspace(1e6, 1e8, 5), 12)
    d = np.tile(np.geomspace(1e3, 1e6, 12), 5)
    y = (0.3 + 50 * n**-0.35 + 20 * d**-0.4) * np.exp(rng.normal(0, 0.005, n.size))
    fit = fit_chinchilla(n, d, y, n_bootstrap=30)
    assert fit.alpha == pytest.approx(0.35, abs=0.05)
    assert fit.beta == pytest.approx(0.4, abs=0.05)
    assert fit.intervals["beta"][0] <= 0.4 <= fit.intervals["beta"][1]


def test_frontier_is_the_lower_envelope():
    import pandas as pd

    frame = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "flops": [1, 10, 100, 1, 10, 100],
                          "loss": [5.0, 3.0, 2.5, 6.0, 2.0, 1.0]})
    front = compute_frontier(frame, "flops", "loss", n_bins=3)
    assert front["y"].tolist() == [5.0, 2.0, 1.0]
    assert front["run"].tolist() == ["a", "b", "b"]


def test_bad_input_and_score_transform():
    with pytest.raises(ReportInputError, match="at least 3 distinct"):
        fit_power_law(np.array([1.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.5]))
    with pytest.raises(ReportInputError, match="positive"):
        fit_power_law(np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 0.5]))
    values, label = to_error("val/lddt", np.array([0.8]))
    assert values[0] == pytest.approx(0.2) and label == "1 − val/lddt"
