"""A run folder: the resolved config, ``state.json`` (status, step, MLflow run id, last metrics), metrics.csv
and checkpoints. Written atomically so a killed process never leaves a torn file."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from harness.tracking import names

# The training loop and the MLflow uploader thread both update state.json: read-modify-write under one lock.
_STATE_LOCK = threading.Lock()


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def state_path(self) -> Path:
        return self.path / names.RUN_STATE_FILE

    @property
    def config_path(self) -> Path:
        return self.path / names.RUN_CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / names.RUN_METRICS_FILE

    @property
    def structure_metrics_path(self) -> Path:
        return self.path / names.RUN_STRUCTURE_METRICS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / names.CHECKPOINT_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / names.LAST_CHECKPOINT

    def read_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {}
        return json.loads(self.state_path.read_text())

    def update_state(self, **changes: Any) -> dict[str, Any]:
        with _STATE_LOCK:
            state = self.read_state() | changes
            atomic_write_text(self.state_path, json.dumps(state, indent=2, sort_keys=True, default=str))
        return state

    def append_metrics(self, step: int, metrics: dict[str, float]) -> dict[str, float]:
        """Record metrics at ``step`` in metrics.csv, each (step, key) once (``harness.tracking.record``)."""
        from harness.tracking.record import MetricRecord

        return MetricRecord(self.metrics_path).append(step, metrics)
