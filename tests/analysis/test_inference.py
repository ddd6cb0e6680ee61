"""Comparisons (analysis/inference.py): Welch p and interval, Holm within a family, the hierarchical bootstrap,
and what "resolved" requires — each against a value computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.collect import read_run_folders, tidy
from analysis.compare import group_column
from analysis.inference import all_pairs, compare_family, holm, welch_p
from analysis.seeds import difference, estimate
from analysis.study import AXIS_FLOPS, BudgetPoint, completed_runs
from tests.analysis.recorded_runs import study


def test_holm_adjusts_in_rank_order_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_welch_p_is_the_two_sided_t_tail():
    a = estimate(np.array([1.0, 1.2, 1.4]))
    b = estimate(np.array([0.0, 0.1, 0.2]))
    d = difference(a, b)
    va, vb = 0.04 / 3, 0.01 / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert d.df == pytest.approx(df)
    assert welch_p(d) == pytest.approx(2 * stats.t.sf(1.1 / math.sqrt(va + vb), df))


def test_all_pairs_reads_against_base_first():
    pairs = all_pairs(["large", "base", "deep_structure"], ("base", "medium", "large", "deep_pairformer",
                                                             "deep_structure"))
    assert pairs == [("large", "base"), ("deep_structure", "base"), ("deep_structure", "large")]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    study(root, budgets=(1e10, 1e11), seeds=3, spread=0.05, noise=0.001)
    frame = tidy(read_run_folders(root, "width_vs_depth"))
    return completed_runs(frame.assign(group=group_column(frame)))


def test_a_family_is_holm_adjusted_and_verdicts_follow_both_intervals(done):
    pairs = [("medium", "base"), ("deep_structure", "base"), ("deep_pairformer", "base")]
    family = compare_family(done, "val/loss", BudgetPoint(AXIS_FLOPS, 1e11), pairs, n_bootstrap=500)
    assert [c.b for c in family.comparisons] == ["base"] * 3
    assert [c.p_holm for c in family.comparisons] == pytest.approx(holm([c.p for c in family.comparisons]))
    medium = family.comparisons[0]
    at = done[(done["budget"] == 1e11)].set_index(["config", "seed"])["val/loss"]
    assert medium.diff.value == pytest.approx(at["medium"].mean() - at["base"].mean())
    # medium's level is 1 below base's with seed offsets of ±0.05: resolved, in medium's favour.
    assert medium.resolved and medium.better == "medium" and medium.boot[1] < 0
    assert medium.boot_over == "seeds" and family.best == "medium"
    # deep_structure vs base: 0.2 apart per decade of level, but the budgets give them different FLOPs; every
    # verdict is "resolved" exactly when Holm's p < 0.05 and the bootstrap interval excludes 0.
    for c in family.comparisons:
        assert c.resolved == (c.p_holm < 0.05 and (c.boot[0] > 0 or c.boot[1] < 0) and c.diff.excludes_zero)


def test_one_seed_is_never_resolved(tmp_path):
    study(tmp_path, budgets=(1e10,), seeds=1, noise=0.0001)
    frame = tidy(read_run_folders(tmp_path, "width_vs_depth"))
    done = completed_runs(frame.assign(group=group_column(frame)))
    family = compare_family(done, "val/loss", BudgetPoint(AXIS_FLOPS, 1e10), [("medium", "base")])
    (c,) = family.comparisons
    assert not c.resolved and "one seed of medium and base" in c.verdict() and math.isnan(c.boot[0])


def test_bootstrap_over_structures_pairs_the_structures(done):
    """Per-structure values that differ by structure but not by configuration: the structure resampling moves
    both configurations alike, so the difference's interval is the seeds' alone."""
    runs = done[done["budget"] == 1e10]
    rows = []
    for run, value in zip(runs["run"], runs["val/loss"], strict=True):
        for j, shift in enumerate((-1.0, 0.0, 1.0)):
            rows.append({"run": run, "step": int(runs.set_index("run").loc[run, "steps"]), "structure": f"s{j}",
                         "metric": "val/loss", "value": value + shift})
    structures = pd.DataFrame(rows)
    point = BudgetPoint(AXIS_FLOPS, 1e10)
    with_structures = compare_family(done, "val/loss", point, [("medium", "base")], structures=structures,
                                     n_bootstrap=2000, seed=1).comparisons[0]
    seeds_only = compare_family(done, "val/loss", point, [("medium", "base")], n_bootstrap=2000,
                                seed=1).comparisons[0]
    assert with_structures.boot_over == "seeds and structures"
    assert with_structures.boot == pytest.approx(seeds_only.boot, abs=0.02)
