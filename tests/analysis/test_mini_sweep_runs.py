"""The analysis on real recorded SeedFold runs of the validation estimator: tests/analysis/data/runs/width_vs_depth
(the `--profile long` sweep, 5 configurations × seeds 0, 1, 2, 1600 steps; README.md beside the data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.answer import study_answer
from analysis.collect import read_run_folders, repeated_step_notes, tidy
from analysis.coverage import coverage_notes, sigma_columns
from analysis.report import build_report
from analysis.study import AXIS_STEPS
from analysis.tables import data_table, width_vs_depth_table

RUNS = Path(__file__).parent / "data" / "runs"


@pytest.fixture(scope="module")
def records():
    return read_run_folders(RUNS, "width_vs_depth")


@pytest.fixture(scope="module")
def frame(records):
    return tidy(records)


def test_every_run_records_the_estimator_contract(records, frame):
    runs = frame.drop_duplicates("run")
    assert len(runs) == 15 and sorted(runs.groupby("config").size().unique()) == [3]
    assert set(runs["seed"]) == {0, 1, 2}
    grid = json.loads(runs["val_sigmas"].iloc[0])
    assert len(sigma_columns(frame)) == len(grid) and (runs["val_sigmas"] == runs["val_sigmas"].iloc[0]).all()
    for key in ("val/loss_noise", "val/lddt_noise", "baseline/lddt_geometric", "val/distogram_ce",
                "val/smooth_lddt", "val/loss_diffusion", "val/loss_diffusion_noise", "val/smooth_lddt_noise"):
        assert frame.dropna(subset=[key])["run"].nunique() == 15, key
    # The whole contract is recorded (the guard's verdict from state.json): nothing is reported missing.
    assert coverage_notes(frame) == []
    assert (runs["guard_source"] == "tag").all() and not runs["guard_rescued"].any()
    assert repeated_step_notes(records) == []


def test_data_counts_come_from_the_params(frame):
    (row,) = data_table(frame).to_dict("records")
    raw = json.loads((next((RUNS / "width_vs_depth").glob("base-s0-*")) / "state.json").read_text())["params"]
    assert row["runs"] == 15
    assert (row["train_structures"], row["train_tokens"], row["val_structures"], row["val_tokens"]) == tuple(
        int(raw[k]) for k in ("data_train_structures", "data_train_tokens", "data_val_structures",
                              "data_val_tokens"))


def test_verdicts_follow_their_intervals(frame):
    (answer,) = study_answer(frame, "width_vs_depth", ("val/loss", "val/lddt", "val/distogram_ce"), n_bootstrap=500)
    # Every run completed its 1600-step schedule: one budget, matched steps; matched compute is not in this design.
    assert answer.axes() == [AXIS_STEPS] and any("matched compute (FLOPs): not in this design" in n
                                                 for n in answer.notes)
    for metric in ("val/loss", "val/lddt", "val/distogram_ce"):
        (family,) = answer.of(metric, AXIS_STEPS)
        assert len(family.comparisons) == 10  # every pair of the five configurations
        for c in family.comparisons:
            assert c.a_est.n_seeds == 3 and c.b_est.n_seeds == 3
            assert c.diff.value == pytest.approx(c.a_est.mean - c.b_est.mean)
            assert c.resolved == (c.p_holm < 0.05 and (c.boot[0] > 0 or c.boot[1] < 0) and c.diff.excludes_zero)
            # The estimator noise (recorded for all but the deterministic distogram CE) floors each spread.
            assert np.isnan(c.a_est.noise) == (metric == "val/distogram_ce")
            assert np.isnan(c.a_est.noise) or c.a_est.se >= c.a_est.noise / np.sqrt(3) - 1e-12


def test_table_shows_baselines_beside_lddt(frame):
    table = width_vs_depth_table(frame).set_index("config")
    geometric = frame.dropna(subset=["baseline/lddt_geometric"])["baseline/lddt_geometric"]
    assert (table["val/lddt geometric baseline"] == f"{geometric.iloc[0]:.4g}").all()
    assert table["final val/lddt"].str.contains(" ± ").all() and table["val/lddt step 0"].str.contains(" ± ").all()
    assert (table["seeds"] == 3).all() and (table["guard"] == "none rescued").all()


@pytest.mark.slow
def test_report_of_the_mini_sweep(frame, tmp_path):
    report = build_report(frame, tmp_path, "width_vs_depth", n_bootstrap=20)
    page = report.html.read_text()
    assert page.index("The answer") < page.index("How to read it") < page.index("Data and runs")
    assert "At matched steps, budgets 1600 steps: val/loss" in page
    laws = pd.read_csv(report.tables["laws"][1], keep_default_na=False)
    # Every law is refused on one budget of complete runs, with its reason.
    assert laws["result"].str.startswith("not fitted: ").all()
    assert {"curves", "sigma", "differences_width_vs_depth"} <= set(report.figures)


def test_the_long_profiles_answer_read_at_complete_runs(frame):
    """docs/examples/width_vs_depth_long read the curves part-way (at the cheapest run's last FLOPs, large in
    warmup) and found every wider configuration worse. Read where every run completed its schedule (1600 steps,
    the paper's matched-steps framing), val/loss resolves only that large is worse than base, medium and
    deep_structure (Holm over the ten pairs, bootstrap agreeing); medium against base is not resolved."""
    (answer,) = study_answer(frame, "width_vs_depth", ("val/loss", "val/lddt"), n_bootstrap=2000)
    (loss,) = answer.of("val/loss", AXIS_STEPS)
    resolved = {(c.a, c.b): c.better for c in loss.comparisons if c.resolved}
    assert resolved == {("large", "base"): "base", ("large", "medium"): "medium",
                        ("deep_structure", "large"): "deep_structure"}
    (lddt,) = answer.of("val/lddt", AXIS_STEPS)
    assert not any(c.resolved for c in lddt.comparisons)
