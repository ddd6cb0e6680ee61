"""The real thing: the `mini` width-vs-depth study trained by harness.train.run.train_run (shrunk to one small
FLOPs budget, a few steps per run), on the SLURM test cluster as one job array, and through the local executor."""

from __future__ import annotations

import os

import pytest
import yaml
from mlflow.tracking import MlflowClient
from rich.console import Console

from harness.dispatch.ledger import Ledger
from harness.sweep.service import prepare, run_prepared
from harness.tracking import names
from harness.tracking.run_folder import RunFolder

# One budget that gives every configuration a few steps (large ≈ 3, base ≈ 20) after a one-step warmup.
BUDGETS = [1.0e10]
# Validation as light as it goes (what is tested is dispatch and tracking, not the estimator).
SHORT = {"train.warmup_steps": 1, "train.val_log_points": 0, "train.checkpoint_every": 2, "train.log_every": 1,
         "train.val_sampling_steps": 10, "train.val_samples": 1, "train.val_copies": 1, "train.val_sigma_nodes": 2,
         "train.val_train_probe": False, "data.val_max_tokens": 32}
QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115


def _sweep_file(tmp_path):
    with open("sweeps/width_vs_depth.yaml") as f:
        sweep = yaml.safe_load(f)
    sweep["base"]["runs_dir"] = str(tmp_path / "runs")
    sweep["profiles"]["mini"]["study"]["budgets"] = BUDGETS
    sweep["profiles"]["mini"]["seeds"] = [0]  # every configuration once: dispatch is what is tested
    for run in sweep["profiles"]["mini"]["runs"].values():
        run.pop("train.warmup_steps", None)
    path = tmp_path / "width_vs_depth.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _check(prepared):
    for spec in prepared.specs:
        state = RunFolder(spec.run_dir).read_state()
        assert state["status"] == "finished" and state["step"] == spec.config.train.max_steps, (spec.label, state)
    spec = prepared.specs[0]
    client = MlflowClient(tracking_uri=spec.config.tracking_uri())
    exp = client.get_experiment_by_name("width_vs_depth")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags[names.TAG_RUN_KEY] for r in runs) == sorted(s.key for s in prepared.specs)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(len(client.get_metric_history(r.info.run_id, names.LOSS)) >= 1 for r in runs)


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_mini_sweep_as_slurm_job_array(tmp_path):
    prepared = prepare(_sweep_file(tmp_path), profile="mini", executor="slurm",
                       extra=SHORT | {"train.threads": 1})
    # 5 configurations x one seed.
    assert prepared.resources.cpus_per_task == 1 and len(prepared.specs) == 5
    outcome = run_prepared(prepared, poll_s=2.0, console=QUIET)
    assert outcome.failed == {}, outcome.failed
    ledger = Ledger.load(prepared.specs[0].run_dir.parent)
    assert len({ledger.jobs[s.key].job_id.split("_")[0] for s in prepared.specs}) == 1  # one array
    _check(prepared)
    again = run_prepared(prepare(_sweep_file(tmp_path), profile="mini", executor="slurm",
                                 extra=SHORT | {"train.threads": 1}), console=QUIET)
    assert again.submitted == 0 and len(again.skipped) == 5


@pytest.mark.slow
def test_mini_sweep_local_executor(tmp_path):
    prepared = prepare(_sweep_file(tmp_path), profile="mini", executor="local", extra=SHORT)
    # Two single-threaded runs at a time on 2 cores (SPEC.md §5: two 2-thread jobs would slow each other).
    assert prepared.kind == "local" and prepared.settings.parallelism == 2
    assert all(spec.config.train.threads == 1 for spec in prepared.specs)
    outcome = run_prepared(prepared, poll_s=1.0, console=QUIET)
    assert outcome.failed == {}, outcome.failed
    _check(prepared)
