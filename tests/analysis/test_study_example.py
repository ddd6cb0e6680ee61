"""The committed study (docs/examples/width_vs_depth_study: `--profile study`, 85 complete runs) read as the
report reads it: its verdicts, an independent recomputation of its differences from the raw records, its learning
rates, and the structure metric that improves with training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.answer import study_answer
from analysis.collect import read_run_folders, read_structure_metrics, tidy
from analysis.study import AXIS_FLOPS, AXIS_STEPS
from analysis.trajectory import structure_trajectories

RUNS = Path(__file__).parents[2] / "docs" / "examples" / "width_vs_depth_study" / "runs"


@pytest.fixture(scope="module")
def records():
    return read_run_folders(RUNS, "width_vs_depth")


@pytest.fixture(scope="module")
def answer(records):
    frame = tidy(records)
    (answer,) = study_answer(frame, "width_vs_depth", ("val/loss", "val/lddt"),
                             structures=read_structure_metrics(records))
    return answer


def raw_final(run_dir: Path, key: str) -> float:
    """The last value of ``key`` in a run's own metrics.csv, read without the analysis code."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["key"] == key]
    return float(max(rows, key=lambda r: int(r["step"]))["value"])


def test_what_the_study_resolves(answer):
    resolved = {(f.point.label, c.a, c.b): c.better for f in answer.of("val/loss", AXIS_FLOPS)
                for c in f.comparisons if c.resolved}
    at_both = {("medium", "base"): "base", ("large", "base"): "base", ("large", "medium"): "medium",
               ("deep_pairformer", "large"): "deep_pairformer", ("deep_structure", "large"): "deep_structure",
               ("deep_structure", "medium"): "deep_structure"}
    expected = {(budget, a, b): better for budget in ("2.5e+11 FLOPs", "8e+11 FLOPs")
                for (a, b), better in at_both.items()}
    expected[("2.5e+11 FLOPs", "deep_pairformer", "medium")] = "deep_pairformer"
    assert resolved == expected
    assert [f.best for f in answer.of("val/loss", AXIS_FLOPS)] == ["base", "deep_structure", "base"]
    (steps,) = answer.of("val/loss", AXIS_STEPS)
    assert steps.point.label == "300 steps" and not any(c.resolved for c in steps.comparisons)
    assert answer.headline()[0].startswith("At matched compute (FLOPs), budgets 8e+10 FLOPs, 2.5e+11 FLOPs, "
                                           "8e+11 FLOPs: val/loss (lower is better): base has the best mean at 2 "
                                           "of 3 budgets; resolved (13 of 30 comparisons")


def test_differences_agree_with_a_recomputation_from_the_raw_records(answer):
    """medium − base at 8e11 FLOPs: the mean over seeds of each configuration's last val/loss, from the run
    folders whose study_budgets tag names that budget."""
    values: dict[str, list[float]] = {"medium": [], "base": []}
    for run_dir in (RUNS / "width_vs_depth").glob("*-*"):
        state = json.loads((run_dir / "state.json").read_text())
        tags = state["tags"]
        if tags.get("study_budgets") == "flops:8e+11" and tags.get("study_config") in values:
            values[tags["study_config"]].append(raw_final(run_dir, "val/loss"))
    assert [len(v) for v in values.values()] == [3, 3]
    (family,) = [f for f in answer.of("val/loss", AXIS_FLOPS) if f.point.value == 8e11]
    c = next(c for c in family.comparisons if (c.a, c.b) == ("medium", "base"))
    assert c.diff.value == pytest.approx(np.mean(values["medium"]) - np.mean(values["base"]), abs=1e-12)


def test_each_configuration_trained_at_the_lr_its_scan_chose(records):
    chosen = json.loads((RUNS / "width_vs_depth" / "lr_choice.json").read_text())
    frame = tidy(records).drop_duplicates("run")
    study = frame[frame["study_role"].isin(["trunk", "branch"])]
    assert {c: float(v["lr"]) for c, v in chosen.items()} == study.groupby("config")["lr"].first().to_dict()
    assert all("minimum of a parabola" in v["note"] for v in chosen.values())


def test_sampled_lddt_rises_in_every_run_and_ends_near_its_peak(records):
    trajectories = structure_trajectories(tidy(records))
    lddt = trajectories[trajectories["metric"] == "val/lddt"]
    # The study runs: a scan run validates at its last step only, so it has no step-0 point.
    assert len(lddt) == 60 and (lddt["improves"] & lddt["ends_near_peak"]).all()
    per_structure = read_structure_metrics(records)
    assert set(per_structure["metric"]) >= {"val/loss", "val/lddt", "val/contact_precision"}
    assert per_structure.groupby("run")["structure"].nunique().eq(8).all()
    assert isinstance(per_structure, pd.DataFrame)
