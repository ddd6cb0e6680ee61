"""Optuna studies: exact trial budgets across concurrent workers, nested MLflow runs, pruning, bad spaces."""

from __future__ import annotations

import json
import os
import sys

import cloudpickle
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from tune_files import write_tune

import tests.harness.sweep.toy_trainer as toy_trainer
from harness.errors import ConfigError
from harness.tracking import names
from harness.tracking.run_folder import RunFolder
from harness.tune.storage import open_storage, storage_url
from harness.tune.study import BEST_FILE, load_tune, run_tune
from harness.tune.trial import run_trial

cloudpickle.register_pickle_by_value(toy_trainer)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _check_study(path, tmp_path, n_trials):
    tune = load_tune(path)
    study_dir = tmp_path / "runs" / tune.name
    study = optuna.load_study(study_name=tune.name, storage=open_storage(storage_url(tune, study_dir)))
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(n_trials))  # distinct, none lost, none extra
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    best = json.loads((study_dir / BEST_FILE).read_text())
    assert best["value"] == min(t.value for t in trials) and best["number"] == study.best_trial.number
    assert best["params"] == study.best_trial.params

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("toy_study")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get(names.TAG_KIND) == "tune_study"]
    children = [r for r in runs if r.data.tags.get(names.TAG_KIND) == "tune_trial"]
    assert len(parents) == 1 and len(children) == n_trials
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert parents[0].data.metrics["best/train/loss"] == pytest.approx(best["value"])
    return study


@pytest.mark.slow
def test_local_study_two_workers(tmp_path):
    path = write_tune(tmp_path)
    result = run_tune(path, executor="local", entrypoint=toy_trainer.toy_train, log=lambda _: None)
    assert result.n_complete == 4 and result.n_failed == 0
    study = _check_study(path, tmp_path, 4)
    # Larger learning rates converge further within 8 steps of this problem: the best has the largest lr.
    best_lr = study.best_trial.params["train.lr"]
    assert best_lr == max(t.params["train.lr"] for t in study.get_trials())
    # The workers were forked by the warm start's zygote (harness.dispatch.warm), which logs each job it forks;
    # each worker runs its trials in processes of its own.
    (log,) = (tmp_path / "runs").rglob("zygote.log")
    forked = {int(line.split()[2].rstrip(":")) for line in log.read_text().splitlines()
              if line.startswith("zygote: job")}
    states = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("state.json")]
    assert len(states) == 4 and len(forked) == 2 and {s["ppid"] for s in states} <= forked


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_slurm_study_two_concurrent_workers(tmp_path):
    path = write_tune(tmp_path, n_trials=6)
    result = run_tune(path, executor="slurm", entrypoint=toy_trainer.toy_train, log=lambda _: None)
    assert result.n_complete == 6
    _check_study(path, tmp_path, 6)


def test_pruned_trial_stops_its_training(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_STEP_S", "0.2")
    from harness.config import RunConfig

    config = RunConfig(runs_dir=tmp_path, train={"max_steps": 200, "lr": 0.01}, tracking={"enabled": False})
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    trial = study.ask()
    run_dir = tmp_path / "trial"
    with pytest.raises(optuna.TrialPruned):
        run_trial(trial, config.model_dump(mode="json"), run_dir, metric=names.LOSS,
                  entrypoint=toy_trainer.toy_train, experiment_id=None, tags={}, poll_s=0.1)
    state = RunFolder(run_dir).read_state()
    assert state["status"] == "pruned" and state["step"] < 20  # stopped early, not trained to 200
    assert os.path.exists(RunFolder(run_dir).metrics_path)
    assert min(trial.storage.get_trial(trial._trial_id).intermediate_values.values()) > 1.0


@pytest.mark.parametrize("section, expected", [
    ({"space": {"train.lrr": {"type": "float", "low": 0.1, "high": 0.2}}}, "space.train.lrr: unknown key"),
    ({"space": {"train.lr": {"type": "float", "low": 0.2, "high": 0.1}}}, "low (0.2) must be < high (0.1)"),
    ({"space": {"train.warmup_steps": {"type": "float", "low": -5.0, "high": 0.5}}},
     "train.warmup_steps: Input should be"),
    ({"space": {"train.lr.1": {"type": "float", "low": 0.1, "high": 0.2}}}, "train.lr is not a list"),
])
def test_bad_tune_file_is_rejected_before_anything_runs(tmp_path, section, expected):
    path = write_tune(tmp_path, **section)
    with pytest.raises(ConfigError) as err:
        run_tune(path, executor="local", entrypoint=toy_trainer.toy_train)
    assert expected in str(err.value)
    assert not (tmp_path / "runs").exists()
