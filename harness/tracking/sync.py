"""Fill a run's MLflow run from its run folder, in the background, so tracking can neither stall, kill, lose nor
duplicate a run's record.

The run folder is the source of truth (``metrics.csv``, ``state.json``); MLflow is a copy brought up to date by
``TrackingSync.sync_once``, which a background ``Uploader`` thread calls every few seconds, the end of training
calls once more with a bounded wait, the next start of the run calls again, and ``harness tracking sync`` calls
for a folder on demand (backfill after an outage that outlived the run).

What reaches MLflow, and only once:

- **Only rows at or before the last durable checkpoint** (``state.json`` ``durable_step``; everything once the
  run has finished). Rows after it may be retrained after a SIGKILL (``harness.tracking.record`` cuts them from
  the record on resume), and MLflow cannot delete a metric point; so they wait until a checkpoint covers them.
- **Each row once.** ``tracking.json`` in the run folder holds the byte offset of ``metrics.csv`` uploaded so
  far, per MLflow run. Before a batch goes out its byte range is written down as in flight; after MLflow
  acknowledges, the offset moves past it. A process killed between the two finds the range in flight at the next
  sync and asks MLflow which of its (key, step) pairs arrived, sending only the rest.
- **One MLflow run per run folder.** The run is found again by the folder's ``run_folder_uid`` tag before one is
  created (a process killed after creating the run but before writing its id to state.json must not make two).

Every MLflow call has a bounded timeout and no retry loop of its own (``MLFLOW_HTTP_REQUEST_*``): the uploader
retries with exponential backoff, and a failure is logged, never raised into training.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from harness.tracking import names
from harness.tracking.record import Row, read_rows
from harness.tracking.run_folder import RunFolder, atomic_write_text

log = logging.getLogger(__name__)
CURSOR_FILE = "tracking.json"
BATCH = 500  # metrics per log_batch (MLflow allows 1000)
STATUSES = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED"}


def bound_mlflow_requests(timeout_s: float = 10.0) -> None:
    """Make each MLflow HTTP request fail within ``timeout_s`` instead of retrying for minutes (defaults: 7
    retries with backoff, 120 s timeout). The user's own settings win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(timeout_s)))


Identity = Callable[[], tuple[dict[str, str], dict[str, str]]]


class TrackingSync:
    """Bring one run folder's MLflow run up to date. Not thread-safe: one caller at a time (the uploader)."""

    def __init__(self, folder: RunFolder, uri: str, *, experiment_name: str, identity: Identity,
                 experiment_id: str | None = None):
        bound_mlflow_requests()
        self.folder = folder
        self.uri = uri
        self.experiment_name = experiment_name
        self.experiment_id = experiment_id
        self.identity = identity
        self.cursor_path = folder.path / CURSOR_FILE
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    # ---- cursor ----------------------------------------------------------------------------------------------

    def _read_cursor(self, run_id: str) -> dict[str, Any]:
        cursor = json.loads(self.cursor_path.read_text()) if self.cursor_path.exists() else {}
        if cursor.get("run_id") != run_id:
            cursor = {"run_id": run_id, "offset": 0, "in_flight": None, "tags": {}, "status": None,
                      "identity_logged": False}
        return cursor

    def _write_cursor(self, cursor: dict[str, Any]) -> None:
        atomic_write_text(self.cursor_path, json.dumps(cursor, indent=1, sort_keys=True))

    # ---- the run ---------------------------------------------------------------------------------------------

    def ensure_run(self) -> str:
        """The MLflow run id of this folder: from state.json, else found by the folder's uid tag, else created."""
        state = self.folder.read_state()
        if state.get("mlflow_run_id"):
            return state["mlflow_run_id"]
        uid = state.get("run_folder_uid") or uuid.uuid4().hex
        if not state.get("run_folder_uid"):
            self.folder.update_state(run_folder_uid=uid)
        from harness.tracking.store import get_or_create_experiment

        experiment_id = self.experiment_id or state.get("experiment_id") or get_or_create_experiment(
            self.uri, self.experiment_name)
        tags, params = self.identity()
        found = self.client.search_runs([experiment_id], filter_string=f"tags.run_folder_uid = '{uid}'",
                                        max_results=1)
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = self.client.create_run(experiment_id, run_name=tags.get(names.TAG_RUN_KEY),
                                             tags=tags | {"run_folder_uid": uid}).info.run_id
        self.folder.update_state(mlflow_run_id=run_id, experiment_id=experiment_id, tracking_uri=self.uri)
        return run_id

    def _log_identity(self, run_id: str, cursor: dict[str, Any]) -> None:
        from mlflow.entities import Param

        _, params = self.identity()
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100], synchronous=True)
        if self.folder.config_path.exists():
            self.client.log_artifact(run_id, str(self.folder.config_path))
        cursor["identity_logged"] = True
        self._write_cursor(cursor)

    # ---- metrics ---------------------------------------------------------------------------------------------

    def _already_in_mlflow(self, run_id: str, rows: list[Row]) -> set[tuple[str, int]]:
        present = set()
        for key in {r.key for r in rows}:
            present |= {(key, m.step) for m in self.client.get_metric_history(run_id, key)}
        return present

    def _upload_metrics(self, run_id: str, cursor: dict[str, Any], durable_step: float) -> int:
        from mlflow.entities import Metric

        rows = read_rows(self.folder.metrics_path, cursor["offset"])
        rows = rows[: next((i for i, r in enumerate(rows) if r.step > durable_step), len(rows))]
        sent = 0
        for i in range(0, len(rows), BATCH):
            batch = rows[i : i + BATCH]
            if cursor["in_flight"] is not None:
                # A previous process died between sending and acknowledging this range: send what is missing.
                present = self._already_in_mlflow(run_id, batch)
                batch_to_send = [r for r in batch if (r.key, r.step) not in present]
            else:
                batch_to_send = batch
            cursor["in_flight"] = [cursor["offset"], batch[-1].end]
            self._write_cursor(cursor)
            now = int(time.time() * 1000)  # for rows of a record begun before it kept training times
            metrics = [Metric(r.key, r.value if math.isfinite(r.value) else float("nan"),
                              r.time_ms if r.time_ms is not None else now, r.step) for r in batch_to_send]
            if metrics:
                self.client.log_batch(run_id, metrics=metrics, synchronous=True)
            cursor["offset"], cursor["in_flight"] = batch[-1].end, None
            self._write_cursor(cursor)
            sent += len(metrics)
        return sent

    # ---- status and tags -------------------------------------------------------------------------------------

    def _push_status(self, run_id: str, cursor: dict[str, Any], state: dict[str, Any]) -> None:
        status = state.get("status")
        tags = {}
        if status in STATUSES:
            tags[names.TAG_STATUS] = status
        if "guard_rescued" in state:
            tags[names.TAG_GUARD_RESCUED] = "true" if state["guard_rescued"] else "false"
        changed = {k: v for k, v in tags.items() if cursor["tags"].get(k) != v}
        if changed:
            from mlflow.entities import RunTag

            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in changed.items()], synchronous=True)
            cursor["tags"] |= changed
            self._write_cursor(cursor)
        if status in STATUSES and cursor["status"] != status:
            if status == "finished":
                self.client.log_artifact(run_id, str(self.folder.state_path))
            if status == "running":
                self.client.update_run(run_id, status="RUNNING")
            else:
                self.client.set_terminated(run_id, status=STATUSES[status])
            cursor["status"] = status
            self._write_cursor(cursor)

    def sync_once(self) -> int:
        """Create/find the run, upload the durable rows not yet in MLflow, push status and tags. Returns the
        number of metric points sent. Raises whatever MLflow raises (the caller decides to retry)."""
        run_id = self.ensure_run()
        cursor = self._read_cursor(run_id)
        if not cursor["identity_logged"]:
            self._log_identity(run_id, cursor)
        state = self.folder.read_state()
        durable = math.inf if state.get("status") == "finished" else state.get("durable_step", -1)
        sent = self._upload_metrics(run_id, cursor, durable)
        self._push_status(run_id, cursor, state)
        return sent

    def pending_rows(self) -> int:
        """Rows of metrics.csv not yet in MLflow (durable or not)."""
        state = self.folder.read_state()
        offset = self._read_cursor(state["mlflow_run_id"])["offset"] if state.get("mlflow_run_id") else 0
        return len(read_rows(self.folder.metrics_path, offset))


class Uploader:
    """A daemon thread calling ``sync.sync_once`` every ``interval_s``, backing off exponentially (to
    ``max_backoff_s``) while tracking fails. Training never waits on it except in ``close``, for at most its
    ``timeout_s``; a sync still running then is abandoned to the process's exit (its rows stay in the folder)."""

    def __init__(self, sync: TrackingSync, *, interval_s: float = 2.0, max_backoff_s: float = 60.0):
        self.sync = sync
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.failures = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mlflow-uploader", daemon=True)

    def start(self) -> Uploader:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def _attempt(self) -> bool:
        try:
            self.sync.sync_once()
        except Exception as exc:  # noqa: BLE001 - any tracking failure is logged and retried, never fatal
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if self.failures == 1 or self.failures % 10 == 0:
                log.warning("tracking at %s failed (%d in a row), metrics stay in %s and are sent later: %s",
                            self.sync.uri, self.failures, self.sync.folder.metrics_path, self.last_error)
            return False
        if self.failures:
            log.warning("tracking at %s is back after %d failed attempts; backfilled", self.sync.uri,
                        self.failures)
        self.failures, self.last_error = 0, None
        return True

    def _loop(self) -> None:
        while True:
            stopping = self._stop
            ok = self._attempt()
            if stopping:
                return
            delay = self.interval_s if ok else min(self.max_backoff_s, self.interval_s * 2 ** self.failures)
            self._wake.wait(delay)
            self._wake.clear()

    def close(self, timeout_s: float = 30.0) -> bool:
        """One last sync, waiting at most ``timeout_s``. True when it finished and succeeded."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive() or self.failures:
            log.warning("tracking at %s did not take the last update within %.0f s (%s); %d rows wait in %s for "
                        "the next start or `harness tracking sync`", self.sync.uri, timeout_s,
                        self.last_error or "no answer", self.sync.pending_rows(), self.sync.folder.metrics_path)
            return False
        return True
