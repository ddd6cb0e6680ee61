"""A Lightning logger that writes each metric to one existing MLflow run and to the run folder's metrics.csv.

The run is created (or found again on resume) by ``harness.train.run``; passing its id here is what makes a
resumed job keep logging into the same MLflow run.
"""

from __future__ import annotations

import math
import time
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from harness.tracking.run_folder import RunFolder


class RunLogger(Logger):
    def __init__(self, tracking_uri: str | None, run_id: str | None, folder: RunFolder):
        super().__init__()
        self._uri = tracking_uri
        self._run_id = run_id
        self._folder = folder
        self._client = None
        self.last_metrics: dict[str, float] = {}

    @property
    def name(self) -> str:
        return "harness"

    @property
    def version(self) -> str:
        return self._run_id or "offline"

    @property
    def client(self):
        if self._client is None and self._uri and self._run_id:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self._uri)
        return self._client

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved config is logged once when the run is created

    @rank_zero_only
    def log_params(self, params: dict[str, str]) -> None:
        """Params learnt during the run (e.g. data counts): to MLflow and to the run folder's state."""
        state = self._folder.read_state()
        self._folder.update_state(params=state.get("params", {}) | params)
        if self.client is not None:
            from mlflow.entities import Param

            self.client.log_batch(self._run_id, params=[Param(k, v) for k, v in params.items()], synchronous=True)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        step = int(step or 0)
        clean = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        self._folder.append_metrics(step, clean)
        self.last_metrics.update(clean)
        if self.client is not None:
            now = int(time.time() * 1000)
            batch = [Metric(k, v if math.isfinite(v) else float("nan"), now, step) for k, v in clean.items()]
            self.client.log_batch(self._run_id, metrics=batch, synchronous=True)
        self._folder.update_state(step=step, last_metrics=self.last_metrics)
