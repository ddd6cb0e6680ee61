"""analysis.fits recovers known power laws from noisy synthetic points, within its bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.collect import ReportInputError
from analysis.fits import (
    LAW_BACKTEST,
    LAW_C,
    LAW_N,
    LAW_ND,
    compute_frontier,
    extrapolation_check,
    fit_chinchilla,
    fit_power_law,
    fit_problem,
    scaling_fits,
    to_error,
)


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


# ------------------------------------------------------------------------------------------------ refusal


def test_refusal_on_too_few_points():
    x, y = noisy_power_law(6, n=5)
    assert fit_problem(fit_power_law(x, y, n_bootstrap=20)) == (
        "too few points (5 for 3 coefficients; needs at least 6)")


def test_refusal_without_resamples():
    x, y = noisy_power_law(7)
    problem = fit_problem(fit_power_law(x, y, n_bootstrap=0))  # no resamples: nothing bounds the coefficients
    assert problem == "no bootstrap resamples: nothing bounds the coefficients"


def test_refusal_of_a_rising_curve():
    x = np.geomspace(1e6, 1e9, 8)
    y = 2.0 + 0.01 * np.log(x) * np.exp(np.random.default_rng(8).normal(0, 0.01, 8))  # rises: no decay at all
    # The constant fit leaves 4 negative then 4 positive residuals: 2 runs, p = 2 / C(8, 4) = 0.029.
    assert fit_problem(fit_power_law(x, y, n_bootstrap=20)) == (
        "A = 0: the fit found no dependence on X; residuals are systematic: 2 runs of residual signs over 8 points "
        "ordered by X (Wald–Wolfowitz p = 0.029)")


def test_a_well_posed_power_law_is_fitted_and_covers_the_truth():
    x, y = noisy_power_law(9, n=16)
    fit = fit_power_law(x, y, n_bootstrap=40, seed=1)
    assert fit_problem(fit) is None
    for name, truth in (("E", 0.5), ("A", 20.0), ("alpha", 0.3)):
        assert fit.intervals[name][0] <= truth <= fit.intervals[name][1]


def test_scaling_fits_refuses_and_fits_on_recorded_runs(tmp_path):
    """Frontier of seed means along one law L = 0.5 + 2e3·C^−0.3: L(C) fitted with α's interval covering 0.3;
    L(N) refused (no run converged); refusals never leave a drawn law behind."""
    from analysis.collect import read_run_folders, tidy
    from tests.analysis.recorded_runs import RecordedRun, write_run

    rng = np.random.default_rng(10)
    for i, flops in enumerate((1e8, 3e8, 1e9)):
        run = RecordedRun(name=f"c{i}", preset=f"p{i}", params=100_000 * (i + 1), flops_per_step=flops,
                          max_steps=400)
        folder = write_run(tmp_path, run)
        metrics = pd.read_csv(folder / "metrics.csv")
        val = (metrics["key"] == "val/loss") & (metrics["step"] > 0)
        c = metrics.loc[val, "step"] * flops
        metrics.loc[val, "value"] = (0.5 + 2e3 * c ** -0.3) * np.exp(rng.normal(0, 0.005, val.sum()))
        metrics.to_csv(folder / "metrics.csv", index=False)
    fits = scaling_fits(tidy(read_run_folders(tmp_path)), "val/loss", n_bootstrap=25)
    assert fits.compute is not None, fits.refused
    assert fits.compute.intervals["alpha"][0] <= 0.3 <= fits.compute.intervals["alpha"][1]
    assert LAW_C not in fits.refused and len(fits.frontier) >= 5
    assert fits.params is None and fits.refused[LAW_N].startswith("no run converged")
    assert fits.extrapolation is None and LAW_BACKTEST in fits.refused


def test_scaling_fits_on_old_quickstart_runs_refuse_every_law():
    from pathlib import Path

    from analysis.collect import read_run_folders, tidy

    frame = tidy(read_run_folders(Path(__file__).parent / "data" / "runs_v0", "width_vs_depth"))
    fits = scaling_fits(frame, "val/loss", n_bootstrap=20)
    assert (fits.params, fits.compute, fits.extrapolation, fits.chinchilla) == (None, None, None, None)
    assert set(fits.refused) == {LAW_N, LAW_C, LAW_ND, LAW_BACKTEST}


def test_fit_with_an_undetermined_exponent_is_refused():
    """An α interval spanning two orders of magnitude (as 14 noisy lDDT points gave: [0.016, 1.68]) is not a law."""
    from analysis.fits import EXPONENT_MAX_SPAN, PowerLawFit

    def fit(low: float, high: float, e_low: float = 0.75) -> PowerLawFit:
        return PowerLawFit(E=0.79, A=1042.0, alpha=0.8, intervals={"E": (e_low, 0.81), "A": (1.0, 6.8e7),
                           "alpha": (low, high)}, n_points=14, loss=0.1, confidence=0.95, samples=np.zeros((0, 3)))

    assert fit_problem(fit(0.016, 1.68)) == (
        "α is not identified: its bootstrap interval [0.016, 1.68] spans a factor 105 (> 10)")
    assert fit_problem(fit(0.3, 0.3 * EXPONENT_MAX_SPAN * 0.99)) is None
    # The rule holds for E too (that lDDT fit's E interval was [0.008, 0.81]).
    assert fit_problem(fit(0.5, 0.6, e_low=0.008)) == (
        "E is not identified: its bootstrap interval [0.008, 0.81] spans a factor 101 (> 10)")


def test_convergence_is_judged_by_the_slope_interval():
    """A flat curve converges; one still falling does not; one that peaked and declines (a score getting worse)
    does not either, however small its last change."""
    from analysis.fits import converged_runs

    steps = np.array([0, 100, 200, 300, 400, 500, 600, 700, 800])
    rows = []
    for run, values in {
        "flat": 3.0 + 0.001 * np.array([1, -1, 1, -1, 1, -1, 1, -1, 1]),
        "falling": 6.0 - 0.5 * np.log1p(steps),
        "declining_score": 0.30 - 0.00002 * steps,  # an lDDT falling slowly: its error rises
    }.items():
        rows += [{"run": run, "step": s, "metric": v} for s, v in zip(steps, values, strict=True)]
    frame = pd.DataFrame(rows)
    assert converged_runs(frame, "metric") == ["flat"]
    # As a score (lDDT) the declining curve's error rises: still not converged.
    assert "declining_score" not in converged_runs(frame.rename(columns={"metric": "val/lddt"}), "val/lddt")
