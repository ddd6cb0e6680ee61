"""Complete runs only (analysis/study.py): one row per run and budget it completes; values at a budget on each
cost axis, interpolation in measured seconds between completed budgets; one profile and one recipe per report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.collect import ReportInputError, read_run_folders, run_table, tidy
from analysis.compare import group_column
from analysis.study import (
    AXIS_FLOPS,
    AXIS_SECONDS,
    AXIS_STEPS,
    BudgetPoint,
    budget_points,
    check_one_recipe,
    completed_runs,
    incomplete_runs,
    values_at,
)
from tests.analysis.recorded_runs import WIDE_AND_DEEP, RecordedRun, study, width_vs_depth, write_run

SECONDS = {"base": 0.1, "medium": 0.15, "large": 0.2, "deep_pairformer": 0.12, "deep_structure": 0.11}


def frame_of(root, sweep="width_vs_depth"):
    records = read_run_folders(root, sweep)
    frame = tidy(records)
    return frame.assign(group=group_column(frame)), records


def test_each_completed_run_is_read_at_the_end_of_its_own_schedule(tmp_path):
    levels = study(tmp_path, budgets=(1e10, 1e11), seeds=2, spread=0.05, seconds_per_step=SECONDS)
    write_run(tmp_path, RecordedRun(name="large", preset="large", seed=7, n_seeds=2, max_steps=40,
                                    flops_per_step=4e8, study_budgets="flops:1e+11", profile="study",
                                    status="running"))
    frame, _ = frame_of(tmp_path)
    done = completed_runs(frame)
    assert len(done) == 20 and done["in_study"].all() and not done["scan"].any()
    assert incomplete_runs(frame) == ["large-lr0.002-S40-s7"]
    row = done[(done["config"] == "deep_pairformer") & (done["budget"] == 1e10) & (done["seed"] == 1)].iloc[0]
    assert (row["budget_axis"], row["steps"]) == (AXIS_FLOPS, 71)  # round(1e10 / 1.4e8)
    # The value at the run's last step: level + slope · log10(its FLOPs / 1e9) + its seed offset.
    assert row["val/loss"] == pytest.approx(levels["deep_pairformer"] - 2 * math.log10(71 * 1.4e8 / 1e9) + 0.05)
    points = budget_points(done)
    assert [p.axis for p in points] == [AXIS_FLOPS, AXIS_FLOPS, AXIS_SECONDS, AXIS_SECONDS]
    # A seconds point per FLOPs budget: the geometric mean over configurations of their mean device-seconds there.
    expected = math.exp(np.mean([math.log(round(1e10 / f) * SECONDS[c] - (round(1e10 / f) % 10) * SECONDS[c])
                                 for c, (_, f, _) in WIDE_AND_DEEP.items()]))
    assert points[2].value == pytest.approx(expected)


def test_matched_seconds_interpolates_completed_budgets_within_their_range(tmp_path):
    study(tmp_path, budgets=(1e10, 1e11), seeds=2, seconds_per_step=SECONDS)
    frame, _ = frame_of(tmp_path)
    done = completed_runs(frame)
    base = done[(done["config"] == "base") & (done["seed"] == 0)].sort_values("device_s")
    target = math.sqrt(base["device_s"].iloc[0] * base["device_s"].iloc[1])  # halfway in log seconds
    values = values_at(done, "val/loss", BudgetPoint(AXIS_SECONDS, target)).set_index(["group", "seed"])
    assert values.loc[("base", 0), "value"] == pytest.approx(base["val/loss"].mean())
    assert bool(values.loc[("base", 0), "interpolated"])
    # large's completed runs end at 0.2 s x 25 and x 250 steps: a point beyond them is not extrapolated.
    far = values_at(done, "val/loss", BudgetPoint(AXIS_SECONDS, 200.0))
    assert "large" not in set(far["group"]) and "base" not in set(far["group"])


def test_runs_of_an_older_sweep_compare_at_their_common_length(tmp_path):
    width_vs_depth(tmp_path, seeds=2)
    frame, _ = frame_of(tmp_path)
    done = completed_runs(frame)
    assert set(done["budget_axis"]) == {AXIS_STEPS} and set(done["budget"]) == {400.0}
    assert [p.label for p in budget_points(done)] == ["400 steps"]


def test_a_report_over_two_profiles_or_two_recipes_is_refused_naming_the_runs(tmp_path):
    study(tmp_path, budgets=(1e10,), seeds=1)
    write_run(tmp_path, RecordedRun(name="base", preset="base", max_steps=100, study_budgets="flops:1e+10",
                                    profile="mini", seed=5, n_seeds=2))
    frame, records = frame_of(tmp_path)
    with pytest.raises(ReportInputError, match=r"2 profiles \(mini: base-lr0.002-S100-s5; study: base-lr0.002-S100"):
        check_one_recipe(frame)
    same_profile = tmp_path / "one"
    study(same_profile, budgets=(1e10,), seeds=1)
    write_run(same_profile, RecordedRun(name="base", preset="base", max_steps=100, study_budgets="flops:1e+10",
                                        profile="study", seed=5, n_seeds=2,
                                        extra_params={"data.crop_size": "64"}))
    frame, records = frame_of(same_profile)
    table = run_table(records)
    table["param:data.crop_size"] = table["param:data.crop_size"].fillna("32")
    with pytest.raises(ReportInputError, match=r"2 different recipes \(they differ in data.crop_size\)"):
        check_one_recipe(frame, table)
    check_one_recipe(frame, table[table["name"] != "base-lr0.002-S100-s5"])  # one recipe: accepted
    # An lr scan's runs validate at their last step only (train.val_at_start false): the same recipe.
    scan = table[table["name"] != "base-lr0.002-S100-s5"].assign(**{"param:train.val_at_start": "True"})
    scan.loc[scan.index[0], "param:train.val_at_start"] = "False"
    check_one_recipe(frame, scan)
    # Runs initialised before AF3's zero init of the conditioning layers became the default are another recipe.
    table = table[table["name"] != "base-lr0.002-S100-s5"].assign(**{"param:model.zero_init_conditioning": "True"})
    table.loc[table.index[0], "param:model.zero_init_conditioning"] = "False"
    with pytest.raises(ReportInputError, match=r"they differ in model.zero_init_conditioning"):
        check_one_recipe(frame, table)


def test_no_completed_run_is_a_clear_error(tmp_path):
    from analysis.study import require_study

    write_run(tmp_path, RecordedRun(name="base", preset="base", status="running", study_budgets="flops:1e+10"))
    frame, _ = frame_of(tmp_path)
    with pytest.raises(ReportInputError, match="no run has completed its schedule yet"):
        require_study(frame)
    assert isinstance(completed_runs(frame), pd.DataFrame) and completed_runs(frame).empty
