"""Compute-optimal advice: per-budget optima, the allocation rule and the GPU recommendation (or its refusal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.advice import GPU_PEAK_FLOPS, advise, allocation, budget_optima, gpu_flops
from analysis.cells import cells_of
from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.completed import completed_runs
from analysis.study_laws import target_cells
from tests.analysis.law_tables import BUDGETS, CONFIGS, LAW, completed_table


@pytest.fixture(scope="module")
def table():
    return completed_table(step_budgets=(200_000,))


@pytest.fixture(scope="module")
def cells(table):
    return target_cells(cells_of(table, "val/loss", n_bootstrap=1000))


def test_gpu_hours_become_flops():
    assert gpu_flops(1000, "H100") == pytest.approx(1000 * 3600 * 989.4e12 * 0.35, rel=1e-15)
    assert gpu_flops(10, "a100", mfu=0.5) == pytest.approx(10 * 3600 * 312e12 * 0.5, rel=1e-15)
    with pytest.raises(ReportInputError, match="--gpu 'V100': unknown GPU; expected one of H100, H100-PCIE"):
        gpu_flops(1, "V100")
    with pytest.raises(ReportInputError, match="--mfu 1.5"):
        gpu_flops(1, "H100", mfu=1.5)
    assert set(GPU_PEAK_FLOPS) >= {"H100", "A100", "H200"}


def test_each_budget_names_the_configuration_the_law_puts_best(cells):
    optima = budget_optima(cells)
    truth = [min(CONFIGS, key=lambda c: LAW.loss(CONFIGS[c], round(b / (6 * CONFIGS[c])))) for b in BUDGETS]
    assert [o.best for o in optima] == truth
    for o in optima:
        assert o.low <= o.value <= o.high and sum(o.share.values()) == pytest.approx(1.0)
        assert o.gap == pytest.approx(cells.table.query("budget == @o.budget and config == @o.runner_up")["value"]
                                      .iloc[0] - o.value)
        assert o.resolved == (o.gap_low > 0)


def test_allocation_rules_recover_the_exponent(cells, table):
    from analysis.advice import allocation_from_law
    from analysis.study_laws import LAW_ND, study_law

    parabola = allocation(cells)
    assert parabola.problem is None and len(parabola.minima) == len(BUDGETS)
    # The isoFLOP parabola is biased where the curves are not parabolas in log N (here by −0.013).
    assert parabola.a == pytest.approx(LAW.allocation, abs=0.03)
    by_law = allocation_from_law(study_law(LAW_ND, cells), cells)
    assert by_law.problem is None and by_law.interval[0] <= LAW.allocation <= by_law.interval[1]
    point, low, high = by_law.n_opt(5e13)
    assert low <= LAW.n_opt(5e13) <= high


def test_allocation_is_refused_when_the_optimum_leaves_the_design():
    big = {k: v for k, v in CONFIGS.items() if v >= 1.5e6}  # the small budgets want smaller models
    cells = target_cells(cells_of(completed_table(configs=big), "val/loss", n_bootstrap=200))
    problem = allocation(cells).problem
    assert problem.startswith("at 1e+12 FLOPs the isoFLOP minimum is not inside the studied sizes [1.5e+06, 1e+07]")


def test_advice_within_the_backtested_range_recommends(table):
    advice = advise(table, 5e13, n_bootstrap=1000)
    assert advice.reason is None and advice.recommended == "xl"
    assert advice.factor == pytest.approx(0.5) and advice.supported_factor == pytest.approx(BUDGETS[1] / BUDGETS[0])
    assert advice.n_opt[1] <= LAW.n_opt(5e13) <= advice.n_opt[2]
    assert advice.steps == pytest.approx(5e13 / (6 * 4e6))
    truth = LAW.loss(LAW.n_opt(5e13), 5e13 / (6 * LAW.n_opt(5e13)))
    assert advice.predicted[1] <= truth * 1.01 and advice.predicted[2] >= truth * 0.99
    assert advice.lines()[-1].startswith("Recommendation: about ")


def test_advice_beyond_the_backtests_refuses_with_the_reason(table):
    advice = advise(table, gpu_flops(1, "H100"), basis="1 H100-hour", n_bootstrap=300)
    factor = gpu_flops(1, "H100") / 1e14
    assert advice.recommended is None
    assert advice.reason == (
        f"the budget is {factor:.3g}× the largest studied budget (1e+14 FLOPs), and the backtests support "
        f"extrapolating at most {BUDGETS[1] / BUDGETS[0]:.3g}×; run the study at budgets reaching within that "
        "factor of it")
    assert advice.lines()[0] == "1 H100-hour" and advice.lines()[-1] == f"No recommendation: {advice.reason}"


def test_advice_on_the_long_fixture_refuses():
    frame = tidy(read_run_folders(Path(__file__).parent / "data" / "runs", "width_vs_depth"))
    advice = advise(completed_runs(frame), gpu_flops(1000, "H100"), n_bootstrap=100)
    assert advice.reason == ("the runs have no FLOPs budgets (every run was trained to a step budget), so there are "
                             "no isoFLOP curves to read a compute-optimal size from")
    assert np.isnan(advice.factor)
