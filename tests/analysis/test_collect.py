"""analysis.collect on the recorded-runs fixture and on a real MLflow (sqlite) store."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.collect import (
    AXIS_PAIRFORMER,
    AXIS_STRUCTURE,
    AXIS_WIDTH,
    NAMES,
    ReportInputError,
    collect,
    final_values,
    read_mlflow_runs,
    read_run_folders,
    run_table,
    tidy,
)

RUNS = Path(__file__).parent / "data" / "runs"


def load_fixture_module():
    spec = importlib.util.spec_from_file_location("make_fixture", RUNS / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_fixture"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_record_names_equal_harness_tracking_names():
    from harness.tracking import names

    assert (NAMES.tag_sweep, NAMES.tag_run_key, NAMES.tag_preset, NAMES.tag_attention, NAMES.tag_kind,
            NAMES.tag_status) == (names.TAG_SWEEP, names.TAG_RUN_KEY, names.TAG_PRESET, names.TAG_ATTENTION,
                                  names.TAG_KIND, names.TAG_STATUS)
    assert (NAMES.params_total, NAMES.params_non_embedding, NAMES.flops_per_example) == (
        names.PARAM_PARAMS_TOTAL, names.PARAM_PARAMS_NON_EMBEDDING, names.PARAM_FLOPS_PER_EXAMPLE)
    assert (NAMES.flops_cumulative, NAMES.examples_seen) == (names.FLOPS_CUMULATIVE, names.EXAMPLES_SEEN)
    assert (NAMES.run_config_file, NAMES.run_state_file, NAMES.run_metrics_file) == (
        names.RUN_CONFIG_FILE, names.RUN_STATE_FILE, names.RUN_METRICS_FILE)


def test_tidy_has_one_row_per_run_and_step_with_expected_columns():
    frame = tidy(read_run_folders(RUNS, "width_vs_depth"))
    assert frame["run"].nunique() == 5
    assert not frame.duplicated(["run", "step"]).any()
    raw = pd.concat(pd.read_csv(p) for p in (RUNS / "width_vs_depth").glob("*/metrics.csv"))
    per_run = {p.parent.name: pd.read_csv(p)["step"].nunique() for p in (RUNS / "width_vs_depth").glob("*/metrics.csv")}
    assert frame.groupby("run").size().to_dict() == per_run
    for column in ("run", "preset", "width", "depth_pairformer", "depth_structure", "attention", "params", "step",
                   "examples", "flops", "train/loss", "val/lddt", "val/loss", "train/grad_norm"):
        assert column in frame, column
    assert set(raw["key"]) <= set(frame.columns)
    large = frame[frame["preset"] == "large"]
    assert large["width"].iloc[0] == 64 and large["depth_pairformer"].iloc[0] == 2
    # Cumulative FLOPs are forward-filled onto validation rows and increase with step.
    assert large["flops"].notna().all() and large["flops"].is_monotonic_increasing
    axes = frame.drop_duplicates("run").set_index("preset")["axis"].to_dict()
    assert axes == {"base": AXIS_WIDTH, "medium": AXIS_WIDTH, "large": AXIS_WIDTH,
                    "deep_pairformer": AXIS_PAIRFORMER, "deep_structure": AXIS_STRUCTURE}


def test_final_values_and_run_table():
    records = read_run_folders(RUNS, "attention_ablation")
    finals = final_values(tidy(records), "val/lddt")
    assert sorted(finals["attention"]) == ["additive", "gated", "vanilla"]
    assert (finals["step"] == 400).all()
    table = run_table(records)
    assert len(table) == 3 and "param:train.lr" in table and "tag:preset" in table


def test_bad_inputs_raise_one_typed_error(tmp_path):
    with pytest.raises(ReportInputError, match="does not exist"):
        read_run_folders(tmp_path / "missing")
    run = tmp_path / "sweep" / "abc"
    run.mkdir(parents=True)
    (run / "metrics.csv").write_text("step,name,value\n1,x,2\n")
    with pytest.raises(ReportInputError, match=r"abc/metrics.csv: missing columns \['key'\]"):
        read_run_folders(tmp_path)
    with pytest.raises(ReportInputError, match="does not exist"):
        read_mlflow_runs(f"sqlite:///{tmp_path}/nope.db")
    with pytest.raises(ReportInputError, match="no run folders"):
        read_run_folders(RUNS, "no_such_sweep")


@pytest.mark.slow
def test_collect_from_real_mlflow_store_matches_logged_values(tmp_path):
    from mlflow.tracking import MlflowClient

    make_fixture = load_fixture_module()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = MlflowClient(uri).create_experiment("scaling")
    make_fixture.run_sweep("attention_ablation", out=tmp_path / "runs", tracking_uri=uri,
                           experiment_id=experiment_id, max_steps=60)
    from_mlflow = tidy(collect(tracking_uri=uri, sweep="attention_ablation"))
    from_folders = tidy(read_run_folders(tmp_path / "runs", "attention_ablation"))
    assert from_mlflow["run"].nunique() == 3
    assert sorted(from_mlflow["name"].unique()) == ["attn_additive", "attn_gated", "attn_vanilla"]
    merged = from_mlflow.merge(from_folders, on=["run", "step"], suffixes=("_m", "_f"))
    assert len(merged) == len(from_folders)
    assert (merged["train/loss_m"] - merged["train/loss_f"]).abs().max() < 1e-4 * merged["train/loss_f"].max()
    assert (merged["params_m"] == merged["params_f"]).all()
    # Both sources together keep each run once.
    assert tidy(collect(tracking_uri=uri, runs_dir=tmp_path / "runs", sweep="attention_ablation"))["run"].nunique() == 3
