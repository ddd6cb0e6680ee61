"""A sweep through submitit's LocalExecutor: every run finishes once, reruns start nothing, failures retry."""

from __future__ import annotations

import sys

import cloudpickle
import toy_trainer
from mlflow.tracking import MlflowClient
from rich.console import Console
from sweep_files import write_sweep
from toy_trainer import toy_train

from harness.dispatch.ledger import Ledger
from harness.sweep.service import prepare, run_prepared, sweep_progress
from harness.tracking import names
from harness.tracking.run_folder import RunFolder

cloudpickle.register_pickle_by_value(toy_trainer)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def _mlflow_runs(spec):
    client = MlflowClient(tracking_uri=spec.config.tracking_uri())
    exp = client.get_experiment_by_name(spec.config.tracking.experiment)
    return client.search_runs([exp.experiment_id])


def test_local_sweep_runs_once_and_rerun_starts_nothing(tmp_path):
    prepared = prepare(write_sweep(tmp_path), executor="local")
    assert prepared.kind == "local" and len(prepared.specs) == 2
    outcome = run_prepared(prepared, poll_s=0.3, console=QUIET, entrypoint=toy_train)
    assert sorted(outcome.finished) == sorted(s.key for s in prepared.specs)
    assert outcome.failed == {} and outcome.submitted == 2
    for spec in prepared.specs:
        state = RunFolder(spec.run_dir).read_state()
        assert state["status"] == "finished" and state["step"] == 12
        assert state["last_metrics"][names.LOSS] < 1.0  # learned something from loss ~10 at w=b=0
    runs = _mlflow_runs(prepared.specs[0])
    assert sorted(r.data.tags[names.TAG_RUN_KEY] for r in runs) == sorted(s.key for s in prepared.specs)
    assert {r.data.tags[names.TAG_SWEEP] for r in runs} == {"toy"}

    again = run_prepared(prepare(write_sweep(tmp_path), executor="local"), poll_s=0.3, console=QUIET,
                         entrypoint=toy_train)
    assert again.submitted == 0 and sorted(again.skipped) == sorted(outcome.finished)
    assert len(_mlflow_runs(prepared.specs[0])) == 2
    assert [p.status for p in sweep_progress(prepared.specs)] == ["done", "done"]


def test_failed_run_is_retried_and_resumes(tmp_path):
    path = write_sweep(tmp_path, runs={"a": {}}, executor={"max_retries": 1})
    prepared = prepare(path, executor="local")
    spec = prepared.specs[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "FAIL_ONCE").write_text("")
    outcome = run_prepared(prepared, poll_s=0.3, console=QUIET, entrypoint=toy_train)
    assert outcome.finished == [spec.key] and outcome.submitted == 2
    record = Ledger.load(spec.run_dir.parent).jobs[spec.key]
    assert record.attempts == 2 and "deliberate crash" in record.error


def test_retries_are_bounded_and_report_the_log_tail(tmp_path):
    path = write_sweep(tmp_path, runs={"a": {}}, executor={"max_retries": 0})
    prepared = prepare(path, executor="local")
    spec = prepared.specs[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "FAIL_ONCE").write_text("")
    outcome = run_prepared(prepared, poll_s=0.3, console=QUIET, entrypoint=toy_train)
    assert outcome.finished == [] and list(outcome.failed) == [spec.key]
    assert "deliberate crash" in outcome.failed[spec.key]
    assert "last lines" in outcome.failed[spec.key]
    assert [p.status for p in sweep_progress(prepared.specs)] == ["failed"]


def test_rerun_resumes_an_unfinished_run_from_its_checkpoint(tmp_path, monkeypatch):
    import time

    from harness.dispatch.executor import cancel_job, local_job_active
    from harness.sweep.driver import SweepDriver

    # Steps slow enough that the cancel lands before the run ends even on a loaded machine: the cancel passes
    # submitit's controller, the warm-start client and the zygote, and under the full suite's load 0.3 s and 0.6 s
    # steps (7 steps to go after step 5) let the run finish first.
    monkeypatch.setenv("TOY_STEP_S", "1.5")
    path = write_sweep(tmp_path, runs={"a": {}})
    prepared = prepare(path, executor="local")
    spec = prepared.specs[0]
    driver = SweepDriver(prepared.specs, prepared.settings, "local", entrypoint=toy_train)
    driver.start()
    deadline = time.monotonic() + 60
    while RunFolder(spec.run_dir).read_state().get("step", 0) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    job_id = driver.ledger.jobs[spec.key].job_id
    cancel_job("local", job_id)  # the sweep is stopped mid-run (checkpoint at step 4)
    while local_job_active(job_id):
        time.sleep(0.2)
    driver.close()
    assert 5 <= RunFolder(spec.run_dir).read_state()["step"] < 12

    outcome = run_prepared(prepare(path, executor="local"), poll_s=0.3, console=QUIET, entrypoint=toy_train)
    assert outcome.finished == [spec.key] and outcome.submitted == 1
    state = RunFolder(spec.run_dir).read_state()
    assert state["status"] == "finished" and state["step"] == 12 and state["starts"] == 2
    rows = (spec.run_dir / "metrics.csv").read_text().splitlines()[1:]
    steps = [int(r.split(",")[0]) for r in rows]
    assert steps[: steps.index(4) + 1] == [1, 2, 3, 4] and steps[-1] == 12
    assert sorted(set(steps)) == list(range(1, 13))  # resumed at step 5 from the step-4 checkpoint
    assert len(_mlflow_runs(spec)) == 1  # the same MLflow run continued


def _run_with(tmp_path, warm_start: bool):
    from harness.sweep.driver import SweepDriver

    tmp_path.mkdir()
    prepared = prepare(write_sweep(tmp_path, executor={"warm_start": warm_start, "parallelism": 2}), executor="local")
    driver = SweepDriver(prepared.specs, prepared.settings, "local", entrypoint=toy_train, poll_s=0.3)
    outcome = driver.run()
    assert sorted(outcome.finished) == sorted(s.key for s in prepared.specs) and outcome.failed == {}
    return prepared, driver


def test_warm_start_forks_every_run_from_the_zygote_with_the_same_results(tmp_path):
    warm, driver = _run_with(tmp_path / "warm", warm_start=True)
    cold, cold_driver = _run_with(tmp_path / "cold", warm_start=False)
    assert "warm start" in warm.where and "fresh interpreter" in cold.where
    assert cold_driver.warm is None and driver.warm.pid is not None
    for w, c in zip(warm.specs, cold.specs, strict=True):
        state, cold_state = RunFolder(w.run_dir).read_state(), RunFolder(c.run_dir).read_state()
        assert state["ppid"] == driver.warm.pid  # forked by the zygote, not started by submitit's controller
        assert cold_state["ppid"] != driver.warm.pid
        assert state["last_metrics"] == cold_state["last_metrics"]
        metrics = [r.split(",")[:3] for r in (w.run_dir / "metrics.csv").read_text().splitlines()]
        assert metrics == [r.split(",")[:3] for r in (c.run_dir / "metrics.csv").read_text().splitlines()]
    assert driver.warm.process.wait(timeout=30) == 0  # stopped with the driver, nothing left running
