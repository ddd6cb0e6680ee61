"""The analysis on real recorded SeedFold runs of the validation estimator: tests/analysis/data/runs/width_vs_depth
(the `--profile long` sweep, 5 configurations × seeds 0, 1, 2, 1600 steps; README.md beside the data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.collect import read_run_folders, repeated_step_notes, tidy
from analysis.compare import answer
from analysis.coverage import coverage_notes, sigma_columns
from analysis.report import build_report
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
    answers = answer(frame, "width_vs_depth", ("val/loss", "val/lddt", "val/distogram_ce"))
    assert [a.metric for a in answers] == ["val/loss", "val/lddt", "val/distogram_ce"]
    for a in answers:
        assert not a.problem, a.problem
        assert len(a.comparisons) == 6
        for c in a.comparisons:
            assert c.a_est.n_seeds == 3 and c.b_est.n_seeds == 3
            assert c.resolved == (c.diff.low > 0 or c.diff.high < 0)
            assert c.diff.value == pytest.approx(c.a_est.mean - c.b_est.mean)
            # The estimator noise (recorded for all but the deterministic distogram CE) floors each spread.
            assert np.isnan(c.a_est.noise) == (a.metric == "val/distogram_ce")
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
    assert page.index("The question, answered") < page.index("Data and runs") < page.index("Figure: scaling")
    assert "comparisons resolved" in page and "budget set by" in page
    fits = pd.read_csv(report.tables["fits"][1], keep_default_na=False)
    # No law holds on these curves (one step budget, the untrained plateau on the frontier): each says why.
    assert fits["result"].str.startswith("not fitted: ").all() and "alpha" not in fits
    compute = fits[(fits["metric"] == "val/loss") & fits["law"].str.startswith("L(C)")]["result"].item()
    assert "residuals are systematic" in compute
    assert set(report.figures) == {"scaling", "sigma"}


def test_the_long_profiles_answer_is_the_one_documented(frame):
    """docs/examples/width_vs_depth_long: on val/loss every comparison is resolved and the wider configuration
    loses at matched compute; the sampled lDDT resolves none of them."""
    loss, lddt = answer(frame, "width_vs_depth", ("val/loss", "val/lddt"))
    assert all(c.resolved and c.better == c.b for c in loss.comparisons)
    budget = loss.comparisons[0].budget
    assert budget == pytest.approx(frame[frame["config"] == "base"].groupby("run")["flops"].max().min(), rel=1e-6)
    assert not any(c.resolved for c in lddt.comparisons)
