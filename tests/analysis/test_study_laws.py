"""Laws of a completed-runs study: cells and their bootstrap, the three laws with their backtests on a table drawn
from a known law, their refusals, and what the committed long fixture (and today's L(C) on it) gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cells import cells_of
from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.completed import COLUMNS, check_completed_runs, completed_runs
from analysis.study_laws import HOLDOUT_BUDGET, HOLDOUT_CONFIG, LAW_C, LAW_N, LAW_ND, study_laws
from tests.analysis.law_tables import BUDGETS, CONFIGS, LAW, completed_table, structure_table

RUNS = Path(__file__).parent / "data" / "runs"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return completed_table(step_budgets=(200_000,))


@pytest.fixture(scope="module")
def fitted(table):
    return study_laws(table, "val/loss", n_bootstrap=1000)


@pytest.fixture(scope="module")
def long_frame() -> pd.DataFrame:
    return tidy(read_run_folders(RUNS, "width_vs_depth"))


# ---------------------------------------------------------------------------------------------------- table


def test_incomplete_runs_are_dropped_and_bad_tables_named(table):
    short = table.assign(steps=np.where(table["run"] == table["run"].iloc[0], 1, table["steps"]))
    assert len(check_completed_runs(short)) == len(table) - 1
    with pytest.raises(ReportInputError, match=r"missing columns \['budget_steps'\]"):
        check_completed_runs(table.drop(columns="budget_steps"))
    with pytest.raises(ReportInputError, match="run keys repeated"):
        check_completed_runs(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(ReportInputError, match="'params' must be positive and finite; runs"):
        check_completed_runs(table.assign(params=-1.0))


def test_cells_are_seed_means_with_pooled_seed_deviations(table):
    cells = cells_of(table, "val/loss", n_bootstrap=4000, seed=3)
    expected = table.groupby(["config", "budget_flops"])["val/loss"].mean()
    flops = cells.table[cells.table["kind"] == "flops"].set_index(["config", "budget"])["value"]
    assert np.allclose(flops.sort_index().to_numpy(), expected.sort_index().to_numpy(), rtol=1e-12)
    assert len(cells.table) == len(CONFIGS) * (len(BUDGETS) + 1) and (cells.table["n_seeds"] == 3).all()
    # Resampled means centre on the means; their spread is the pooled relative seed sd over √3 (noise 0.5 %).
    relative = cells.replicates / cells.table["value"].to_numpy() - 1
    assert np.abs(relative.mean(0)).max() < 1e-3
    assert relative.std(0).mean() == pytest.approx(0.005 / np.sqrt(3), rel=0.25)


def test_structure_resampling_adds_the_structures_spread(table):
    without = cells_of(table, "val/loss", n_bootstrap=500, seed=1)
    flat = cells_of(table, "val/loss", n_bootstrap=500, seed=1, structures=structure_table(table, spread=0.0))
    spread = cells_of(table, "val/loss", n_bootstrap=500, seed=1, structures=structure_table(table, spread=0.3))
    assert np.allclose(flat.replicates, without.replicates, rtol=0, atol=1e-12)
    assert spread.by_structure and spread.resampling == "seeds and validation structures"
    assert (spread.replicates.std(0) > without.replicates.std(0)).all()
    partial = structure_table(table).query("run != @table.run.iloc[0]")
    with pytest.raises(ReportInputError, match="missing for runs"):
        cells_of(table, "val/loss", structures=partial)


# ------------------------------------------------------------------------------------------------- laws


def test_every_law_of_a_true_chinchilla_study_is_presented_and_covers_the_truth(fitted):
    for name in (LAW_C, LAW_N, LAW_ND):
        assert fitted[name].presented, fitted[name].problem
    nd = fitted[LAW_ND].fit.intervals
    for coefficient in ("E", "A", "alpha", "B", "beta"):
        assert nd[coefficient][0] <= getattr(LAW, coefficient) <= nd[coefficient][1], coefficient
    # The frontier of E + A/N^α + B/D^β at C = 6ND is E + G·C^(−αβ/(α+β)).
    c = fitted[LAW_C].fit.intervals
    assert c["E"][0] <= LAW.E <= c["E"][1]
    assert c["alpha"][0] <= LAW.alpha * LAW.beta / (LAW.alpha + LAW.beta) <= c["alpha"][1]
    # At 200,000 steps every configuration sees D = 2e5: L(N) = (E + B·D^−β) + A·N^−α.
    n = fitted[LAW_N].fit.intervals
    assert n["alpha"][0] <= LAW.alpha <= n["alpha"][1]
    assert n["E"][0] <= LAW.E + LAW.B * 2e5**-LAW.beta <= n["E"][1]
    assert len(fitted[LAW_ND].points) == len(CONFIGS) * (len(BUDGETS) + 1)


def test_backtests_hold_out_the_largest_budget_and_configuration(fitted):
    nd = {b.holdout: b for b in fitted[LAW_ND].backtests}
    assert nd[HOLDOUT_BUDGET].what == "1e+14 FLOPs" and nd[HOLDOUT_BUDGET].factor == pytest.approx(BUDGETS[1] / 1e12)
    assert len(nd[HOLDOUT_BUDGET].points) == len(CONFIGS) and nd[HOLDOUT_BUDGET].passed
    assert nd[HOLDOUT_CONFIG].what == "xxl" and nd[HOLDOUT_CONFIG].factor == pytest.approx(1e7 / 4e6)
    assert len(nd[HOLDOUT_CONFIG].points) == len(BUDGETS) + 1 and nd[HOLDOUT_CONFIG].passed
    for b in nd.values():
        assert (b.points["error"] == (b.points["predicted"] - b.points["observed"]) / b.points["observed"]).all()
        assert abs(b.error) < 0.01
    c = {b.holdout: b for b in fitted[LAW_C].backtests}
    assert c[HOLDOUT_BUDGET].passed and len(c[HOLDOUT_BUDGET].points) == 1
    # xxl is never the best configuration: holding it out changes no frontier point.
    assert not c[HOLDOUT_CONFIG].applicable
    assert c[HOLDOUT_CONFIG].problem == "the held-out cells are not among the law's points"
    n = {b.holdout: b for b in fitted[LAW_N].backtests}
    assert not n[HOLDOUT_BUDGET].applicable and n[HOLDOUT_CONFIG].passed


def test_a_regime_change_at_the_largest_budget_fails_the_backtest():
    shifted = completed_table(shift={BUDGETS[-1]: 1.03})
    law = study_laws(shifted, "val/loss", n_bootstrap=500, names=(LAW_ND,))[LAW_ND]
    assert law.problem is not None
    assert law.problem.startswith("the backtest fails: without the largest budget (1e+14 FLOPs), 2.5× past")
    assert law.problem.endswith("(fails)")
    assert not law.presented and law.status() == f"not fitted: {law.problem}"


def test_too_few_budgets_and_single_seeds_are_refused():
    four = study_laws(completed_table(budgets=BUDGETS[:4]), "val/loss", n_bootstrap=200, names=(LAW_C,))[LAW_C]
    assert four.problem == "too few points (4 for 3 coefficients; needs at least 6)" and four.fit is None
    single = study_laws(completed_table(seeds=1), "val/loss", n_bootstrap=200, names=(LAW_ND,))[LAW_ND]
    assert single.problem.startswith("every cell has one seed: there is no seed-to-seed spread to bootstrap")


def test_scores_are_fitted_as_their_error(table):
    law = study_laws(table, "val/lddt", n_bootstrap=200, names=(LAW_ND,))[LAW_ND]
    assert law.target == "1 − val/lddt"
    cells = cells_of(table, "val/lddt", n_bootstrap=0)
    assert np.allclose(np.sort(law.points["value"]), np.sort(1 - cells.table["value"]))


# ------------------------------------------------------------------------------------------ long fixture


def test_the_long_fixture_as_a_completed_runs_table(long_frame):
    runs = completed_runs(long_frame)
    assert len(runs) == 15 and (runs[COLUMNS.steps] == 1600).all() and runs[COLUMNS.budget_flops].isna().all()
    base = runs[runs[COLUMNS.config] == "base"].sort_values(COLUMNS.seed)
    assert base[COLUMNS.flops_per_step].iloc[0] == 520504128.0  # the run's recorded flops/per_step
    assert base[COLUMNS.loss].tolist() == pytest.approx([3.3123954251030754, 3.306221, 3.293301], rel=1e-6)
    assert set(runs[COLUMNS.group]) == {"base", "medium", "large", "deep_pairformer", "deep_structure"}


def test_the_long_fixture_supports_no_law(long_frame):
    """One step budget (1600 steps, constant lr) and five configurations: nothing a law can stand on."""
    fitted = study_laws(completed_runs(long_frame), "val/loss", n_bootstrap=200)
    assert fitted[LAW_C].problem.startswith("no FLOPs budgets: every run was trained to a step budget")
    assert fitted[LAW_N].problem == "too few points (5 for 3 coefficients; needs at least 6)"
    assert fitted[LAW_ND].problem == "too few points (5 for 5 coefficients; needs at least 10)"


def test_todays_compute_frontier_law_is_refused(long_frame):
    """The report's L(C) until now: a line through the frontier of every curve point of the long fixture,
    the untrained plateau (steps 1–12, loss ≈ 6.84) included. The new rules refuse it: E sits at 0 and the
    residuals run in a systematic S."""
    from analysis.fits import LAW_C as LEGACY_C
    from analysis.fits import scaling_fits

    fits = scaling_fits(long_frame, "val/loss", n_bootstrap=200)
    assert len(fits.frontier) == 16 and fits.frontier["y"].max() > 6.8  # the plateau is on the frontier
    assert fits.compute is None
    assert fits.refused[LEGACY_C] == (
        "E = 0 sits on its bound 0: no irreducible loss is identified; residuals are systematic: 4 runs of "
        "residual signs over 16 points ordered by C (Wald–Wolfowitz p = 0.0089)")
