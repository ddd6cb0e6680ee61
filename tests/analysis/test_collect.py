"""analysis.collect on the recorded-runs fixture and on a real MLflow (sqlite) store."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
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
    repeated_step_notes,
    repeated_steps,
    run_table,
    tidy,
)
from analysis.coverage import coverage_notes
from tests.analysis.recorded_runs import SIGMAS, RecordedRun, log_run, metrics_of, width_vs_depth, write_run

RUNS = Path(__file__).parent / "data" / "runs"
RUNS_V0 = Path(__file__).parent / "data" / "runs_v0"  # quickstart runs recorded before the estimator


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
    assert (NAMES.val_loss, NAMES.val_loss_diffusion, NAMES.val_loss_diffusion_at_sigma, NAMES.val_distogram_ce,
            NAMES.val_smooth_lddt, NAMES.val_lddt, NAMES.val_loss_noise, NAMES.val_lddt_noise,
            NAMES.val_loss_diffusion_noise, NAMES.val_smooth_lddt_noise, NAMES.baseline_lddt_geometric) == (
        names.VAL_LOSS, names.VAL_LOSS_DIFFUSION, names.VAL_LOSS_DIFFUSION_AT_SIGMA, names.VAL_DISTOGRAM_CE,
        names.VAL_SMOOTH_LDDT, names.VAL_LDDT, names.VAL_LOSS_NOISE, names.VAL_LDDT_NOISE,
        names.VAL_LOSS_DIFFUSION_NOISE, names.VAL_SMOOTH_LDDT_NOISE, names.BASELINE_LDDT_GEOMETRIC)
    assert (NAMES.train_structures, NAMES.train_tokens, NAMES.val_structures, NAMES.val_tokens, NAMES.val_sigmas,
            NAMES.tag_guard_rescued, NAMES.skipped_steps, NAMES.rollbacks) == (
        names.PARAM_TRAIN_STRUCTURES, names.PARAM_TRAIN_TOKENS, names.PARAM_VAL_STRUCTURES, names.PARAM_VAL_TOKENS,
        names.PARAM_VAL_SIGMAS, names.TAG_GUARD_RESCUED, names.SKIPPED_STEPS, names.ROLLBACKS)
    assert (NAMES.tag_profile, NAMES.tag_study_config, NAMES.tag_study_budgets, NAMES.tag_study_role,
            NAMES.tag_study_lr, NAMES.device, NAMES.time_basis, NAMES.device_s, NAMES.val_contact_precision,
            NAMES.val_contact_precision_noise, NAMES.run_structure_metrics_file,
            NAMES.structure_key_separator) == (
        names.TAG_PROFILE, names.TAG_STUDY_CONFIG, names.TAG_STUDY_BUDGETS, names.TAG_STUDY_ROLE,
        names.TAG_STUDY_LR, names.PARAM_DEVICE, names.PARAM_TIME_BASIS, names.DEVICE_S_CUMULATIVE,
        names.VAL_CONTACT_PRECISION, names.VAL_CONTACT_PRECISION_NOISE, names.RUN_STRUCTURE_METRICS_FILE,
        names.STRUCTURE_KEY_SEPARATOR)
    from analysis.seeds import LEVEL_ERROR_OF, NOISE_OF

    assert LEVEL_ERROR_OF == {names.VAL_CONTACT_PRECISION: names.VAL_CONTACT_PRECISION_NOISE,
                              names.VAL_CONTACT_PRECISION_SEP12: names.VAL_CONTACT_PRECISION_SEP12_NOISE}

    assert NOISE_OF == {names.VAL_LOSS: names.VAL_LOSS_NOISE, names.VAL_LDDT: names.VAL_LDDT_NOISE,
                        names.VAL_LOSS_DIFFUSION: names.VAL_LOSS_DIFFUSION_NOISE,
                        names.VAL_SMOOTH_LDDT: names.VAL_SMOOTH_LDDT_NOISE}


def test_new_metrics_params_seeds_and_guard_tag_are_read(tmp_path):
    width_vs_depth(tmp_path, seeds=2)
    write_run(tmp_path, RecordedRun(name="rescued", preset="base", guard_rescued=True))
    frame = tidy(read_run_folders(tmp_path, "width_vs_depth"))
    runs = frame.drop_duplicates("run").set_index("name")
    assert runs.loc["medium-s1", "config"] == "medium" and runs.loc["medium-s1", "seed"] == 1
    assert runs.loc["rescued", "guard_rescued"] and not runs.loc["medium-s0", "guard_rescued"]
    assert (runs["guard_source"] == "tag").all()
    assert (runs["train_structures"] == 120).all() and (runs["val_tokens"] == 6000).all()
    assert json.loads(runs.loc["base-s0", "val_sigmas"]) == list(SIGMAS)
    for key in ("val/loss_noise", "val/lddt_noise", "baseline/lddt_geometric", "val/loss_diffusion_sigma_04"):
        assert key in frame, key
    # A validation step between two train logs gets its FLOPs by interpolation in step (not the last log's).
    medium = frame[frame["name"] == "medium-s0"].set_index("step")
    assert medium.loc[16, "flops"] == pytest.approx(16 * 2e8)


def test_old_runs_without_the_new_records_are_read_and_described():
    frame = tidy(read_run_folders(RUNS_V0, "width_vs_depth"))
    runs = frame.drop_duplicates("run")
    assert runs["train_structures"].isna().all() and (runs["val_sigmas"] == "").all()
    assert (runs["guard_source"] == "counters").all() and (runs["guard_rescued"] == False).all()  # noqa: E712
    (note,) = coverage_notes(frame)
    assert note.startswith("None of the 5 runs recorded val/loss_noise, val/lddt_noise")
    assert "intervals of val/loss come from the seeds alone" in note


def test_a_resumed_run_keeps_the_last_value_of_a_repeated_step_and_says_so(tmp_path):
    folder = write_run(tmp_path, RecordedRun(name="resumed", repeat_from=100, repeat_shift=0.5))
    records = read_run_folders(tmp_path)
    raw = pd.read_csv(folder / "metrics.csv")
    repeated = raw[(raw["key"] == "val/loss") & (raw["step"] >= 100)]
    assert repeated.groupby("step").size().eq(2).all()
    frame = tidy(records)
    assert not frame.duplicated(["run", "step"]).any()
    for step, values in repeated.groupby("step")["value"]:
        assert frame.set_index("step").loc[step, "val/loss"] == pytest.approx(values.iloc[-1])
    n_repeated = repeated["step"].nunique()
    assert repeated_steps(records[0]) == {"val/loss": n_repeated}
    (note,) = repeated_step_notes(records)
    assert f"val/loss ({n_repeated} steps)" in note and "the last value of each step is kept" in note


@pytest.mark.slow
def test_mlflow_keeps_the_latest_write_of_a_repeated_step(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = MlflowClient(uri).create_experiment("resume")
    run = RecordedRun(name="resumed", repeat_from=100, repeat_shift=0.5, guard_rescued=True)
    log_run(uri, experiment_id, run)
    records = collect(tracking_uri=uri)
    frame = tidy(records)
    assert frame["guard_rescued"].iloc[0] and frame["train_structures"].iloc[0] == 120
    expected = metrics_of(run)
    last = expected[expected["key"] == "val/loss"].drop_duplicates("step", keep="last").set_index("step")["value"]
    got = frame.dropna(subset=["val/loss"]).set_index("step")["val/loss"]
    assert np.allclose(got.reindex(last.index), last)
    assert repeated_step_notes(records) and "val/loss" in repeated_step_notes(records)[0]


def test_tidy_has_one_row_per_run_and_step_with_expected_columns():
    frame = tidy(read_run_folders(RUNS, "width_vs_depth"))
    assert frame["run"].nunique() == 15 and frame["config"].nunique() == 5
    assert not frame.duplicated(["run", "step"]).any()
    raw = pd.concat(pd.read_csv(p) for p in (RUNS / "width_vs_depth").glob("*/metrics.csv"))
    per_run = {p.parent.name: pd.read_csv(p)["step"].nunique() for p in (RUNS / "width_vs_depth").glob("*/metrics.csv")}
    assert frame.groupby("run").size().to_dict() == per_run
    for column in ("run", "preset", "width", "depth_pairformer", "depth_structure", "attention", "params", "step",
                   "examples", "flops", "train/loss", "val/lddt", "val/loss", "train/grad_norm"):
        assert column in frame, column
    assert set(raw["key"]) <= set(frame.columns)
    large = frame[frame["name"] == "large-s1"]
    assert large["width"].iloc[0] == 64 and large["depth_pairformer"].iloc[0] == 2
    # Cumulative FLOPs reach every validation row and increase with step.
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
