"""The headline comparison at matched compute, on recorded runs whose answer is known (recorded_runs.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.compare import (
    ATTENTION,
    WIDTH_VS_DEPTH,
    answer,
    compare_at_compute,
    group_column,
    matched_budget,
    studies_for,
)
from tests.analysis.recorded_runs import WIDE_AND_DEEP, RecordedRun, width_vs_depth, write_run

RUNS = Path(__file__).parent / "data" / "runs"
RUNS_V0 = Path(__file__).parent / "data" / "runs_v0"  # quickstart runs recorded before the estimator


def frame_of(root: Path, sweep: str = "width_vs_depth"):
    frame = tidy(read_run_folders(root, sweep))
    return frame.assign(group=group_column(frame))


def studies(root: Path):
    return studies_for(frame_of(root), "width_vs_depth")


def test_width_vs_depth_difference_interval_and_verdict_are_exact(tmp_path):
    levels = width_vs_depth(tmp_path, seeds=3, spread=0.05, noise=0.01)
    frame = frame_of(tmp_path)
    comparisons = {(c.a, c.b): c for c in compare_at_compute(frame, "val/loss", WIDTH_VS_DEPTH)}
    assert set(comparisons) == set(WIDTH_VS_DEPTH.pairs)
    # Budget: the largest compute every run reached = base's 400 steps × 1e8 FLOPs.
    budget = 400 * WIDE_AND_DEEP["base"][1]
    c = comparisons[("medium", "deep_pairformer")]
    assert c.budget == pytest.approx(budget)
    # Every configuration falls 2 per decade of FLOPs, so the difference is the difference of levels.
    assert c.diff.value == pytest.approx(levels["medium"] - levels["deep_pairformer"], abs=1e-6)
    assert c.a_est.mean == pytest.approx(levels["medium"] - 2 * math.log10(budget / 1e9), abs=1e-6)
    # Seeds at −0.05, 0, +0.05: s = 0.05 (above the 0.01 estimator noise); Welch df = 4.
    half = stats.t.ppf(0.975, 4) * 0.05 * math.sqrt(2 / 3)
    assert c.diff.high - c.diff.value == pytest.approx(half, rel=1e-6)
    assert c.resolved and c.better == "medium"
    assert "resolved: medium is better" in c.statement()
    assert comparisons[("large", "base")].better == "large"


def test_overlapping_configurations_are_not_resolved(tmp_path):
    # Two configurations 0.02 apart whose seeds spread by ±0.1: the interval contains 0.
    for preset, level in (("medium", 9.0), ("deep_pairformer", 9.02)):
        for seed, offset in enumerate((-0.1, 0.0, 0.1)):
            write_run(tmp_path, RecordedRun(name=preset, preset=preset, seed=seed, n_seeds=3, loss_level=level,
                                            seed_offset=offset))
    frame = frame_of(tmp_path)
    (c,) = [c for c in compare_at_compute(frame, "val/loss", *studies_for(frame, "width_vs_depth"))]
    assert (c.a, c.b) == ("medium", "deep_pairformer")
    assert c.diff.low < 0 < c.diff.high and not c.resolved and c.better is None
    assert "not resolved at this budget (the interval contains 0)" in c.statement()


def test_estimator_noise_floors_seeds_that_agree_by_chance(tmp_path):
    # Seeds identical, estimator noise 0.05: the interval is the noise's, not zero.
    for preset, level in (("medium", 9.0), ("base", 9.3)):
        for seed in range(2):
            write_run(tmp_path, RecordedRun(name=preset, preset=preset, seed=seed, n_seeds=2, loss_level=level,
                                            noise=0.05))
    (c,) = compare_at_compute(frame_of(tmp_path), "val/loss", *studies(tmp_path))
    se = math.sqrt(2 * 0.05**2 / 2)
    df = (2 * 0.05**2 / 2) ** 2 / (2 * (0.05**2 / 2) ** 2 / 1)
    assert c.diff.high - c.diff.value == pytest.approx(stats.t.ppf(0.975, df) * se, rel=1e-6)
    assert c.diff.value == pytest.approx(-0.3)
    assert c.resolved and c.better == "medium"  # 0.3 > t(0.975, 2) · 0.05 = 0.215


def test_one_seed_is_never_resolved(tmp_path):
    for preset, level in (("large", 5.0), ("base", 10.0)):
        write_run(tmp_path, RecordedRun(name=preset, preset=preset, loss_level=level, noise=0.01))
    (c,) = compare_at_compute(frame_of(tmp_path), "val/loss", *studies(tmp_path))
    assert c.diff.value == pytest.approx(-5.0) and c.diff.excludes_zero
    assert not c.resolved
    assert "one seed of large and base" in c.verdict()


def test_attention_study_groups_by_variant(tmp_path):
    for variant, level in (("vanilla", 1.0), ("additive", 1.5), ("gated", 1.2)):
        for seed, offset in enumerate((-0.01, 0.01)):
            write_run(tmp_path, RecordedRun(name=variant, sweep="attention_ablation", attention=variant, seed=seed,
                                            n_seeds=2, loss_level=level, seed_offset=offset, noise=0.001))
    frame = frame_of(tmp_path, "attention_ablation")
    (result,) = [a for a in answer(frame, "attention_ablation", ("val/loss",))]
    assert result.study.name == ATTENTION.name
    diffs = {(c.a, c.b): round(c.diff.value, 6) for c in result.comparisons}
    assert diffs == {("additive", "vanilla"): 0.5, ("gated", "vanilla"): 0.2, ("gated", "additive"): -0.3}
    assert all(c.resolved for c in result.comparisons)
    assert {c.better for c in result.comparisons} == {"vanilla", "gated"}


def test_higher_is_better_for_lddt(tmp_path):
    for preset, level in (("medium", 0.5), ("base", 0.3)):
        for seed, offset in enumerate((-0.01, 0.01)):
            write_run(tmp_path, RecordedRun(name=preset, preset=preset, seed=seed, n_seeds=2, lddt_level=level,
                                            seed_offset=offset))
    (c,) = compare_at_compute(frame_of(tmp_path), "val/lddt", *studies(tmp_path))
    assert c.diff.value == pytest.approx(0.2) and c.better == "medium"


def test_old_runs_whose_compute_ranges_do_not_overlap_say_so():
    frame = frame_of(RUNS_V0)
    with pytest.raises(ReportInputError, match="compute ranges do not overlap"):
        matched_budget(frame, "val/loss")
    answers = answer(frame, "width_vs_depth", ("val/loss", "val/lddt"))
    assert [a.metric for a in answers] == ["val/loss", "val/lddt"]
    assert all(not a.comparisons and "not comparable at matched compute" in a.lines()[0] for a in answers)


def test_a_run_without_trained_points_is_left_out_and_the_limiting_run_named(tmp_path):
    for preset, level in (("medium", 9.0), ("base", 10.0)):
        for seed, offset in enumerate((-0.01, 0.0, 0.01)):
            write_run(tmp_path, RecordedRun(name=preset, preset=preset, seed=seed, n_seeds=3, loss_level=level,
                                            seed_offset=offset, max_steps=400 if seed else 200))
    crashed = write_run(tmp_path, RecordedRun(name="base", preset="base", seed=3, n_seeds=4, loss_level=10.0))
    metrics = pd.read_csv(crashed / "metrics.csv")
    metrics[~((metrics["key"] == "val/loss") & (metrics["step"] > 0))].to_csv(crashed / "metrics.csv", index=False)
    (result,) = answer(frame_of(tmp_path), "width_vs_depth", ("val/loss",))
    assert result.excluded == ("base-s3",)
    (c,) = result.comparisons
    assert c.b_est.n_seeds == 3 and c.budget == pytest.approx(200 * 1e8)
    assert c.diff.value == pytest.approx(-1.0)
    assert result.limited_by == "base-s0 (finished, step 200)"
    assert "left out, no val/loss after step 0: base-s3" in result.summary()
