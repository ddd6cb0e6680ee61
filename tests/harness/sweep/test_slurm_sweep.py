"""Sweeps on the real test SLURM cluster (slurm/testing/up.sh): job arrays, requeue on preemption, reruns."""

from __future__ import annotations

import csv
import os
import sys
import time

import cloudpickle
import pytest
import toy_trainer
from mlflow.tracking import MlflowClient
from rich.console import Console
from sweep_files import write_sweep
from toy_trainer import toy_train

from harness.dispatch.ledger import Ledger
from harness.errors import ConfigError
from harness.sweep.driver import SweepDriver
from harness.sweep.service import prepare, run_prepared
from harness.tracking import names
from harness.tracking.run_folder import RunFolder

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]
cloudpickle.register_pickle_by_value(toy_trainer)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115
CPU_JOB = {"slurm_profile": "cpu_small", "slurm": {"mem_gb": 1, "time_min": 5}}


def _steps(spec) -> list[int]:
    with open(RunFolder(spec.run_dir).metrics_path) as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_slurm_job_array_finishes_and_rerun_starts_nothing(tmp_path):
    path = write_sweep(tmp_path, executor=CPU_JOB)
    prepared = prepare(path, executor="slurm")
    assert prepared.resources.cpus_per_task == 1
    outcome = run_prepared(prepared, poll_s=1.0, console=QUIET, entrypoint=toy_train)
    assert outcome.failed == {} and sorted(outcome.finished) == sorted(s.key for s in prepared.specs)
    ledger = Ledger.load(prepared.specs[0].run_dir.parent)
    job_ids = [ledger.jobs[s.key].job_id for s in prepared.specs]
    assert len({j.split("_")[0] for j in job_ids}) == 1 and all("_" in j for j in job_ids)  # one array
    client = MlflowClient(tracking_uri=prepared.specs[0].config.tracking_uri())
    exp = client.get_experiment_by_name("toy")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags[names.TAG_RUN_KEY] for r in runs) == sorted(s.key for s in prepared.specs)
    assert all(r.info.status == "FINISHED" for r in runs)

    again = run_prepared(prepare(path, executor="slurm"), poll_s=1.0, console=QUIET, entrypoint=toy_train)
    assert again.submitted == 0 and len(again.skipped) == 2
    assert Ledger.load(prepared.specs[0].run_dir.parent).jobs[prepared.specs[0].key].job_id == job_ids[0]


@pytest.mark.slow
def test_interrupted_run_requeues_and_continues(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_STEP_S", "0.25")
    path = write_sweep(tmp_path, runs={"a": {}}, executor=CPU_JOB,
                       base={"runs_dir": str(tmp_path / "runs"), "model": {"preset": "base", "miniature": True},
                             "train": {"max_steps": 60, "checkpoint_every": 5, "lr": 0.05}})
    prepared = prepare(path, executor="slurm")
    spec = prepared.specs[0]
    driver = SweepDriver(prepared.specs, prepared.settings, "slurm", resources=prepared.resources,
                         entrypoint=toy_train, poll_s=1.0)
    try:
        driver.start()
        job = driver.jobs[spec.key]
        deadline = time.monotonic() + 120
        while RunFolder(spec.run_dir).read_state().get("step", 0) < 12:
            assert time.monotonic() < deadline, "the job never reached step 12"
            time.sleep(0.5)
        job._interrupt()  # what SLURM sends before preemption / the time limit
        deadline = time.monotonic() + 300
        while not driver.poll():
            assert time.monotonic() < deadline, "the requeued job did not finish"
            time.sleep(1.0)
    finally:
        driver.close()
    assert driver.outcome.finished == [spec.key] and driver.outcome.submitted == 1
    state = RunFolder(spec.run_dir).read_state()
    assert state["status"] == "finished" and state["step"] == 60
    assert state["starts"] == 2  # resumed once, by the requeued job (same SLURM job id)
    steps = _steps(spec)
    assert sorted(set(steps)) == list(range(1, 61))  # continuous: resumed from the last checkpoint
    assert steps[-1] == 60
    client = MlflowClient(tracking_uri=spec.config.tracking_uri())
    history = client.get_metric_history(state["mlflow_run_id"], names.LOSS)
    assert sorted({m.step for m in history}) == list(range(1, 61))  # one MLflow run across the requeue
    exp = client.get_experiment_by_name("toy")
    assert len(client.search_runs([exp.experiment_id])) == 1


@pytest.mark.parametrize("section, expected", [
    ({"grid": {"train.lrr": [0.1, 0.2]}}, "grid.train.lrr: unknown key 'lrr' under train"),
    ({"runs": {"a": {"train.max_steps": "many"}}}, "run a: train.max_steps: Input should be a valid integer"),
    ({"runs": {"a": {"model.preset": "huge"}}}, "unknown preset 'huge'"),
])
def test_bad_sweep_is_rejected_before_submission(tmp_path, section, expected):
    path = write_sweep(tmp_path, executor=CPU_JOB, **section)
    before = set(_queued_ids())
    with pytest.raises(ConfigError) as err:
        run_prepared(prepare(path, executor="slurm"), console=QUIET, entrypoint=toy_train)
    assert expected in str(err.value) and str(path) in str(err.value)
    assert set(_queued_ids()) == before
    assert not (tmp_path / "runs").exists()


def _queued_ids() -> list[str]:
    from harness.dispatch.executor import active_slurm_jobs

    return list(active_slurm_jobs())
