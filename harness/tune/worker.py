"""A tuning worker job: runs its share of the study's trials. Requeue-safe (submitit ``Checkpointable``):
after preemption it marks its own interrupted trial failed and runs only the trials it still owes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import submitit
from optuna.trial import TrialState

from harness.dispatch.job import TRAIN_ENTRYPOINT
from harness.tracking import names
from harness.tune import space
from harness.tune.schema import TuneFile
from harness.tune.storage import load_study
from harness.tune.trial import TrialError, run_trial

WORKER_ATTR = "worker"


class TuneWorker(submitit.helpers.Checkpointable):
    def __init__(self, entrypoint: str | Callable[..., Any] = TRAIN_ENTRYPOINT):
        self.entrypoint = entrypoint

    def __call__(self, tune_raw: dict[str, Any], storage: str, worker: int, quota: int, study_dir: str,
                 run_config_overrides: dict[str, Any], experiment_id: str | None,
                 parent_run_id: str | None) -> list[int]:
        """Run trials until this worker has ``quota`` finished (complete, pruned or failed) trials.
        Returns the numbers of the trials it ran in this call."""
        tune = TuneFile.model_validate(tune_raw)
        study = load_study(tune, storage, worker)
        mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(WORKER_ATTR) == worker]
        for t in mine:
            if t.state == TrialState.RUNNING:  # left by this worker's preempted previous life: redo it
                study.tell(t.number, state=TrialState.FAIL)
        # Trials that failed on their own carry an "error" attribute and count; interrupted ones do not.
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                   or (t.state == TrialState.FAIL and "error" in t.user_attrs) for t in mine)
        ran = []
        for _ in range(quota - done):
            trial = study.ask()
            trial.set_user_attr(WORKER_ATTR, worker)
            ran.append(trial.number)
            self._one(study, trial, tune, Path(study_dir), run_config_overrides, experiment_id, parent_run_id)
        return ran

    def _one(self, study: optuna.Study, trial: optuna.Trial, tune: TuneFile, study_dir: Path,
             overrides: dict[str, Any], experiment_id: str | None, parent_run_id: str | None) -> None:
        params = space.suggest(trial, tune.space)
        config = space.trial_config(tune, params, name=f"{tune.name}-t{trial.number:03d}")
        raw = config.model_dump(mode="json")
        for key, value in overrides.items():
            space.set_param(raw, key, value)
        run_dir = study_dir / "trials" / f"t{trial.number:03d}-{config.config_hash()}"
        trial.set_user_attr("run_dir", str(run_dir))
        tags = {names.TAG_KIND: "tune_trial", names.TAG_SWEEP: tune.name, "trial": str(trial.number)}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        try:
            value = run_trial(trial, raw, run_dir, metric=tune.metric, entrypoint=self.entrypoint,
                              experiment_id=experiment_id, tags=tags, poll_s=tune.poll_s)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except TrialError as err:
            trial.set_user_attr("error", str(err))
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
