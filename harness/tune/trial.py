"""One Optuna trial = one training run, trained in a child process while this process reports the run's
validation metric to Optuna as it appears in ``metrics.csv`` and kills the child when the pruner says so."""

from __future__ import annotations

import csv
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from harness.config import RunConfig
from harness.dispatch.job import resolve_entrypoint
from harness.errors import HarnessError
from harness.tracking.run_folder import RunFolder


class TrialError(HarnessError):
    """A trial's training failed or never recorded the study's metric."""


class MetricReader:
    """New ``(step, value)`` rows of one key in a run folder's long-format metrics.csv."""

    def __init__(self, path: Path, key: str):
        self.path, self.key, self._offset = path, key, 0
        self.last: tuple[int, float] | None = None

    def new_values(self) -> list[tuple[int, float]]:
        if not self.path.exists():
            return []
        with open(self.path) as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]  # a line being written is read next time
        self._offset += len(complete.encode())
        rows = [r for r in csv.reader(complete.splitlines()) if len(r) in (3, 4) and r[1] == self.key]
        out = [(int(float(r[0])), float(r[2])) for r in rows]
        if out:
            self.last = out[-1]
        return out


def _train_child(entrypoint: Callable[..., Any] | str, config: dict[str, Any], run_dir: str,
                 experiment_id: str | None, tags: dict[str, str]) -> None:
    fn = resolve_entrypoint(entrypoint)
    fn(RunConfig.model_validate(config), Path(run_dir), experiment_id=experiment_id, tags=tags)


def run_trial(trial: optuna.Trial, config: dict[str, Any], run_dir: Path, *, metric: str,
              entrypoint: Callable[..., Any] | str, experiment_id: str | None, tags: dict[str, str],
              poll_s: float = 2.0) -> float:
    """Train, reporting ``metric`` at each step it is recorded; returns its last value.

    Raises ``optuna.TrialPruned`` after stopping the training, or TrialError when training fails.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(run_dir)
    reader = MetricReader(folder.metrics_path, metric)
    # fork: the child inherits the entry point (tests pass functions that cannot be imported by name).
    child = multiprocessing.get_context("fork").Process(
        target=_train_child, args=(entrypoint, config, str(run_dir), experiment_id, tags), daemon=False)
    child.start()
    try:
        while True:
            finished = not child.is_alive()
            for step, value in reader.new_values():
                trial.report(value, step)
                if trial.should_prune():
                    _stop(child)
                    _mark_stopped(folder)
                    raise optuna.TrialPruned(f"pruned at step {step} ({metric} = {value:.4g})")
            if finished:
                break
            time.sleep(poll_s)
    finally:
        if child.is_alive():
            _stop(child)
    if child.exitcode != 0:
        raise TrialError(f"trial {trial.number}: training in {run_dir} exited with code {child.exitcode}")
    if reader.last is None:
        raise TrialError(f"trial {trial.number}: the run in {run_dir} never recorded metric {metric!r}")
    return reader.last[1]


def _stop(child: multiprocessing.Process) -> None:
    child.terminate()
    child.join(15)
    if child.is_alive():
        child.kill()
        child.join(5)


def _mark_stopped(folder: RunFolder) -> None:
    state = folder.update_state(status="pruned")
    run_id, uri = state.get("mlflow_run_id"), state.get("tracking_uri")
    if run_id and uri:
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=uri).set_terminated(run_id, status="KILLED")
