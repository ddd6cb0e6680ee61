"""What each run of a sweep is doing, read from its run folder (state.json) and the sweep's ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.dispatch.ledger import JobRecord
from harness.sweep.spec import RunSpec
from harness.tracking import names
from harness.tracking.run_folder import RunFolder

# Display states, in the order the live table sorts them.
QUEUED, RUNNING, DONE, FAILED, NOT_STARTED = "queued", "running", "done", "failed", "not started"


def run_finished(spec: RunSpec) -> bool:
    """The run folder says it trained to its configured last step."""
    state = RunFolder(spec.run_dir).read_state()
    return state.get("status") == "finished" and int(state.get("step", -1)) >= spec.config.train.max_steps


@dataclass
class RunProgress:
    spec: RunSpec
    status: str
    step: int
    last_metrics: dict[str, Any]
    job: JobRecord | None
    mlflow_run_id: str | None

    @property
    def loss(self) -> float | None:
        return self.last_metrics.get(names.LOSS)


def read_progress(spec: RunSpec, job: JobRecord | None, *, active: bool | None) -> RunProgress:
    """``active``: whether the run's job is queued/running (None: unknown, e.g. no job)."""
    state = RunFolder(spec.run_dir).read_state()
    file_status = state.get("status")
    if run_finished(spec):
        status = DONE
    elif active:
        status = RUNNING if file_status == "running" else QUEUED
    elif job is not None and (job.error or file_status in ("failed", "running")):
        status = FAILED  # a job that ended without finishing, or whose run folder was left mid-run
    elif file_status == "failed":
        status = FAILED
    else:
        status = NOT_STARTED
    return RunProgress(spec, status, int(state.get("step", 0) or 0), dict(state.get("last_metrics") or {}),
                       job, state.get("mlflow_run_id"))
