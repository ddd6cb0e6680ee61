"""Loss → structure metric (OLMo's second ladder step): recovered where it holds, refused where it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.cells import cells_of
from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.completed import completed_runs
from analysis.ladder import loss_to_metric
from tests.analysis.law_tables import CONTACT, LDDT, completed_table


@pytest.fixture(scope="module")
def table():
    return completed_table(step_budgets=(200_000,), seed=1)


@pytest.mark.parametrize(("metric", "truth"), [("val/lddt", LDDT), ("val/contact_precision", CONTACT)])
def test_a_logistic_mapping_is_recovered(table, metric, truth):
    ladder = loss_to_metric(table, metric, n_bootstrap=1000)
    assert ladder.presented, ladder.problem
    interval = ladder.interval()
    assert interval["a"][0] <= truth[0] <= interval["a"][1] and interval["b"][0] <= truth[1] <= interval["b"][1]
    assert ladder.form == f"{metric} = σ(a + b·val/loss)"
    point, low, high = ladder.predict(2.3, np.full(1000, 2.3))
    assert point == pytest.approx(1 / (1 + np.exp(-(ladder.a + ladder.b * 2.3))))
    assert low < point < high and low <= 1 / (1 + np.exp(-(truth[0] + truth[1] * 2.3))) <= high


def test_both_axes_are_resampled_with_the_same_draws(table):
    doubled = table.assign(**{"val/contact_precision": table["val/loss"] * 0.1})
    x = cells_of(doubled, "val/loss", n_bootstrap=50, seed=4)
    y = cells_of(doubled, "val/contact_precision", n_bootstrap=50, seed=4)
    assert np.allclose(y.replicates, 0.1 * x.replicates, rtol=1e-12)


def test_a_metric_that_rises_with_the_loss_is_refused(table):
    wrong = table.assign(**{"val/lddt": 1 / (1 + np.exp(-(-4.0 + 1.0 * table["val/loss"])))})
    ladder = loss_to_metric(wrong, "val/lddt", n_bootstrap=200)
    assert ladder.problem.startswith("not monotone in the expected direction: val/lddt rises with val/loss")
    with pytest.raises(ValueError, match="not fitted"):
        ladder.predict(2.3)


def test_a_metric_unrelated_to_the_loss_is_not_determined(table):
    rng = np.random.default_rng(0)  # (at 95 %, 2 of 40 such draws show a slope by chance)
    noise = table.assign(**{"val/lddt": rng.uniform(0.3, 0.4, len(table))})
    assert loss_to_metric(noise, "val/lddt", n_bootstrap=300).problem.startswith("not determined: the slope b = ")


def test_a_hump_is_refused_for_systematic_residuals(table):
    loss = table["val/loss"]
    hump = table.assign(**{"val/lddt": 1 / (1 + np.exp(-(3.0 - 0.8 * (loss - 3.0) ** 2 - 0.6 * loss)))})
    problem = loss_to_metric(hump, "val/lddt", n_bootstrap=200).problem
    assert "residuals are systematic" in problem and "is not a monotone logistic function of val/loss" in problem


def test_the_long_fixture_lddt_does_not_follow_its_loss():
    """Across the 5 configurations at 1600 steps, the larger lDDT goes with the larger loss (large: 3.41, 0.193)."""
    frame = tidy(read_run_folders(Path(__file__).parent / "data" / "runs", "width_vs_depth"))
    ladder = loss_to_metric(completed_runs(frame), "val/lddt", n_bootstrap=1000)
    assert ladder.problem.startswith("not monotone in the expected direction: val/lddt rises with val/loss (b = +1")
    assert len(ladder.points) == 5
    with pytest.raises(ReportInputError, match="no completed run has both"):
        loss_to_metric(completed_runs(frame), "val/contact_precision")
