"""`harness tune FILE`: create the study once, start the workers (local processes or SLURM jobs), wait, then
print and save the best trial. The study is an MLflow parent run; each trial is a run nested under it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.config_files import parse_config, read_yaml
from harness.dispatch import executor as ex
from harness.dispatch.cluster import default_executor_kind
from harness.dispatch.job import TRAIN_ENTRYPOINT
from harness.dispatch.profiles import load_resources
from harness.dispatch.tracking import JobTracking
from harness.dispatch.warm import WarmStart, start_warm
from harness.errors import ConfigError, HarnessError
from harness.tracking import names
from harness.tracking.atomic import atomic_write_text
from harness.tune import space
from harness.tune.schema import TuneFile
from harness.tune.storage import create_study_once, storage_url
from harness.tune.worker import TuneWorker

BEST_FILE = "best_trial.json"
PARENT_ATTR = "mlflow_parent_run_id"


class TuneError(HarnessError):
    """A worker failed or the study ended without a completed trial."""


@dataclass
class TuneResult:
    study_dir: Path
    n_complete: int
    n_pruned: int
    n_failed: int
    best: dict[str, Any] | None


def load_tune(path: str | Path) -> TuneFile:
    tune = parse_config(TuneFile, read_yaml(path), str(path))
    problems = space.check(tune)
    if problems:
        raise ConfigError(str(path), problems)
    return tune


def _parent_run(study, tracking: JobTracking, base: RunConfig, tune: TuneFile) -> tuple[str | None, str | None]:
    if not base.tracking.enabled:
        return None, None
    from mlflow.tracking import MlflowClient

    uri = tracking.uri_for(base)
    experiment_id = tracking.experiment_id(uri, base.tracking.experiment)
    parent = study.user_attrs.get(PARENT_ATTR)
    if parent is None:
        client = MlflowClient(tracking_uri=uri)
        run = client.create_run(experiment_id, run_name=f"study {tune.name}",
                                tags={names.TAG_KIND: "tune_study", names.TAG_SWEEP: tune.name})
        study_params = {"n_trials": tune.n_trials, "workers": tune.workers, "metric": tune.metric,
                        "direction": tune.direction,
                        "space": json.dumps({k: v.model_dump() for k, v in tune.space.items()})}
        for key, value in study_params.items():
            client.log_param(run.info.run_id, key, value)
        parent = run.info.run_id
        study.set_user_attr(PARENT_ATTR, parent)
    return experiment_id, parent


def run_tune(path: str | Path, *, executor: str | None = None,
             entrypoint: str | Callable[..., Any] = TRAIN_ENTRYPOINT, poll_s: float = 2.0,
             log: Callable[[str], None] = print) -> TuneResult:
    tune = load_tune(path)
    base = RunConfig.model_validate(space.base_dump(tune))
    kind = executor or tune.executor.kind
    if kind == "auto":
        kind = default_executor_kind()
    if kind not in ("local", "slurm"):
        raise ConfigError("--executor", [f"expected local or slurm, got {kind!r}"])
    resources = load_resources(tune.executor.slurm_profile, tune.executor.slurm,
                               source=f"{path}: executor.slurm") if kind == "slurm" else None

    study_dir = (base.runs_dir / tune.name).resolve()
    study_dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(tune, study_dir)
    study = create_study_once(tune, url)
    tracking = JobTracking(kind)
    warm: WarmStart | None = None  # local workers fork from it (harness.dispatch.warm)
    try:
        experiment_id, parent = _parent_run(study, tracking, base, tune)
        overrides = {"tracking.uri": tracking.uri_for(base)} if base.tracking.enabled else {}
        folder = study_dir / "submitit" / time.strftime("%Y%m%d-%H%M%S")
        worker = TuneWorker(entrypoint)
        args = [(tune.model_dump(mode="json"), url, i, quota, str(study_dir), overrides, experiment_id, parent)
                for i, quota in enumerate(tune.quotas())]
        if kind == "slurm":
            ex_ = ex.slurm_executor(folder, resources, name=tune.name, array_parallelism=tune.workers)
            with ex_.batch():
                jobs = [ex_.submit(worker, *a) for a in args]
        else:
            if tune.executor.warm_start:
                warm = start_warm(folder / "zygote.log", entrypoint)
            ex_ = ex.local_executor(folder, timeout_min=tune.executor.local_timeout_min,
                                    python=warm.python if warm is not None else None)
            jobs = [ex_.submit(worker, *a) for a in args]
        log(f"study {tune.name}: {tune.n_trials} trials on {len(jobs)} {kind} worker(s) "
            f"{[j.job_id for j in jobs]}; storage {url}")
        failures = []
        for job in jobs:
            try:
                job.result()
            except Exception as exc:  # the worker's own error, with its log tail
                failures.append(f"worker job {job.job_id}: {str(exc).strip().splitlines()[-1]}\n"
                                f"{ex.log_tail(job.paths.stderr, 15)}")
        result = _summarise(study_dir, url, tune, tracking, base, parent)
    finally:
        tracking.close()
        if warm is not None:
            warm.stop()
    if failures:
        raise TuneError("\n".join(failures))
    if result.best is None:
        raise TuneError(f"study {tune.name} has no completed trial ({result.n_pruned} pruned, "
                        f"{result.n_failed} failed); see the trial folders in {study_dir / 'trials'}")
    log(f"best trial #{result.best['number']}: {tune.metric} = {result.best['value']:.6g} "
        f"with {result.best['params']} (saved to {study_dir / BEST_FILE})")
    return result


def _summarise(study_dir: Path, url: str, tune: TuneFile, tracking: JobTracking, base: RunConfig,
               parent: str | None) -> TuneResult:
    from optuna.trial import TrialState

    from harness.tune.storage import load_study

    study = load_study(tune, url, 0)
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    best = None
    if count[TrialState.COMPLETE]:
        t = study.best_trial
        best = {"study": tune.name, "number": t.number, "value": t.value, "params": t.params,
                "metric": tune.metric, "direction": tune.direction, "run_dir": t.user_attrs.get("run_dir"),
                "n_complete": count[TrialState.COMPLETE], "n_pruned": count[TrialState.PRUNED]}
        atomic_write_text(study_dir / BEST_FILE, json.dumps(best, indent=2))
        if parent:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=tracking.uri_for(base))
            client.log_metric(parent, f"best/{tune.metric}", t.value)
            client.set_tag(parent, "best_trial", str(t.number))
            client.log_artifact(parent, str(study_dir / BEST_FILE))
            client.set_terminated(parent, status="FINISHED")
    return TuneResult(study_dir, count[TrialState.COMPLETE], count[TrialState.PRUNED], count[TrialState.FAIL],
                      best)
