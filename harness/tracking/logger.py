"""A Lightning logger that records each metric in the run folder's metrics.csv and leaves MLflow to a background
uploader (``harness.tracking.sync``): logging never waits on, and never fails because of, the tracking server.

The record is cut back to the checkpoint's step when a run resumes (``harness.tracking.record``), and MLflow only
receives rows a durable checkpoint covers, so a resumed run's record holds each step once, in both places.
"""

from __future__ import annotations

import contextlib
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from harness.tracking import names
from harness.tracking.record import MetricRecord
from harness.tracking.run_folder import RunFolder
from harness.tracking.sync import Uploader


class RunLogger(Logger):
    def __init__(self, folder: RunFolder, uploader: Uploader | None = None, run_id: str | None = None):
        super().__init__()
        self._folder = folder
        self._record = MetricRecord(folder.metrics_path)
        self._structures = MetricRecord(folder.structure_metrics_path)
        self.uploader = uploader
        self._run_id = run_id
        self.last_metrics: dict[str, float] = {}

    @property
    def name(self) -> str:
        return "harness"

    @property
    def version(self) -> str:
        return self._run_id or "offline"

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved config is logged once when the run is created

    @rank_zero_only
    def log_params(self, params: dict[str, str]) -> None:
        """Params learnt during the run (e.g. data counts): into the run folder's state, and to MLflow when
        its client is reachable now (best effort: the folder is the record)."""
        state = self._folder.read_state()
        self._folder.update_state(params=state.get("params", {}) | params)
        client = getattr(getattr(self.uploader, "sync", None), "client", None)
        if client is not None and self._run_id:
            from mlflow.entities import Param

            with contextlib.suppress(Exception):  # a tracking outage must not stop training
                client.log_batch(self._run_id, params=[Param(k, v) for k, v in params.items()], synchronous=True)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        step = int(step or 0)
        clean = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        self._record.append(step, clean)
        self.last_metrics.update(clean)
        self._folder.update_state(step=step, last_metrics=self.last_metrics)

    @rank_zero_only
    def log_structure_metrics(self, step: int, per_structure: dict[str, dict[str, float]]) -> None:
        """One validation's values per structure (entry id → {metric: value}) into ``val_structures.csv`` (the
        run folder only: they are for intervals over structures, not for the MLflow charts)."""
        sep = names.STRUCTURE_KEY_SEPARATOR
        self._structures.append(step, {f"{metric}{sep}{entry}": float(value)
                                       for entry, values in sorted(per_structure.items())
                                       for metric, value in values.items()})

    @rank_zero_only
    def checkpoint_saved(self, step: int) -> None:
        """Rows up to ``step`` can no longer be retrained: they may go to MLflow now."""
        self._folder.update_state(durable_step=step)
        if self.uploader is not None:
            self.uploader.wake()
