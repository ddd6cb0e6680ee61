"""Dispatch a sweep's runs and watch them to the end: skip finished runs, attach to runs still queued or
running from an earlier invocation, (re)submit the rest, retry failures a bounded number of times.

MLflow experiments are created once here and served to SLURM jobs through a server (``JobTracking``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.dispatch import executor as ex
from harness.dispatch.job import TRAIN_ENTRYPOINT, TrainJob
from harness.dispatch.ledger import JobRecord, Ledger
from harness.dispatch.resources import SlurmResources
from harness.dispatch.tracking import JobTracking
from harness.dispatch.warm import WarmStart, start_warm
from harness.errors import HarnessError
from harness.sweep.progress import DONE, FAILED, RunProgress, read_progress, run_finished
from harness.sweep.schema import ExecutorSettings
from harness.sweep.spec import RunSpec
from harness.tracking import names
from harness.tracking.atomic import atomic_write_text
from harness.tracking.run_folder import RunFolder
from harness.train.checkpointing import checkpoint_name


class SweepError(HarnessError):
    """The sweep cannot be dispatched as asked (e.g. its runs live in different folders)."""


@dataclass
class SweepOutcome:
    finished: list[str] = field(default_factory=list)  # run keys
    skipped: list[str] = field(default_factory=list)  # already finished before this invocation
    failed: dict[str, str] = field(default_factory=dict)  # run key -> error with log tail
    submitted: int = 0  # jobs submitted by this invocation (retries included)


def sweep_dir_of(specs: list[RunSpec]) -> Path:
    dirs = {spec.run_dir.parent for spec in specs}
    if len(dirs) != 1:
        raise SweepError(f"the runs of a sweep must share one folder, got {sorted(map(str, dirs))} "
                         "(do not vary runs_dir inside a sweep)")
    return dirs.pop()


class SweepDriver:
    def __init__(self, specs: list[RunSpec], settings: ExecutorSettings, kind: str, *,
                 resources: SlurmResources | None = None,
                 entrypoint: str | Callable[..., Any] = TRAIN_ENTRYPOINT, poll_s: float = 2.0):
        if kind not in ("local", "slurm"):
            raise SweepError(f"executor must be 'local' or 'slurm', got {kind!r}")
        self.specs = {spec.key: spec for spec in specs}
        self.settings = settings
        self.kind = kind
        self.resources = resources or SlurmResources()
        self.job_fn = TrainJob(entrypoint)
        self.poll_s = poll_s
        self.sweep_dir = sweep_dir_of(specs)
        self.ledger = Ledger.load(self.sweep_dir)
        self.outcome = SweepOutcome()
        self.jobs: dict[str, Any] = {}  # run key -> live submitit job (this invocation's or attached)
        self.queue: list[str] = []  # run keys waiting for a local slot
        self.waiting: list[str] = []  # branches waiting for their parent's checkpoint (RunSpec.after)
        self.tracking = JobTracking(kind)
        self.warm: WarmStart | None = None  # the zygote local jobs fork from, started with the first local job
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # A fresh submitit folder per invocation: a reused one can return a stale job's result (docs/DESIGN.md §6).
        self.submitit_dir = self.sweep_dir / "submitit" / f"{stamp}-{time.monotonic_ns() % 10**6:06d}"

    # ------------------------------------------------------------------------------------------ planning
    def plan(self) -> tuple[list[str], list[str], list[str]]:
        """(finished, still active from an earlier invocation, to submit) run keys."""
        uses_slurm = any(r.executor == "slurm" for r in self.ledger.jobs.values())
        active_slurm = ex.active_slurm_jobs() if uses_slurm else {}
        finished, attached, pending = [], [], []
        for key, spec in self.specs.items():
            record = self.ledger.jobs.get(key)
            if run_finished(spec):
                finished.append(key)
            elif record and (record.job_id in active_slurm if record.executor == "slurm"
                             else ex.local_job_active(record.job_id)):
                attached.append(key)
            else:
                pending.append(key)
        return finished, attached, pending

    def _job_args(self, key: str) -> tuple[dict[str, Any], str, str | None, dict[str, str]]:
        spec = self.specs[key]
        folder = RunFolder(spec.run_dir)
        if not folder.config_path.exists():
            # Written at submission so that `harness status` lists queued runs too.
            atomic_write_text(folder.config_path,
                              yaml.safe_dump(spec.config.model_dump(mode="json"), sort_keys=False))
        config, experiment_id = self.tracking.job_config(spec.config)
        tags = spec.tags | {names.TAG_SWEEP: spec.sweep, names.TAG_RUN_KEY: key, names.TAG_KIND: "train"}
        return config, str(spec.run_dir), experiment_id, tags

    # ------------------------------------------------------------------------------------------ submission
    def _record(self, key: str, job: Any, executor: str) -> None:
        previous = self.ledger.jobs.get(key)
        attempts = previous.attempts + 1 if previous else 1
        self.ledger.jobs[key] = JobRecord(executor=executor, job_id=str(job.job_id),
                                          folder=str(self.submitit_dir), log=str(job.paths.stdout), attempts=attempts,
                                          label=self.specs[key].label,
                                          error=previous.error if previous else None)
        self.jobs[key] = job
        self.outcome.submitted += 1

    def _submit_slurm(self, keys: list[str]) -> None:
        executor = ex.slurm_executor(self.submitit_dir, self.resources, name=self.sweep_dir.name,
                                     array_parallelism=self.settings.parallelism)
        args = [self._job_args(key) for key in keys]
        with executor.batch():
            jobs = [executor.submit(self.job_fn, *a) for a in args]
        for key, job in zip(keys, jobs, strict=True):
            self._record(key, job, "slurm")

    def _fill_local_slots(self) -> None:
        slots = (self.settings.parallelism or 1) - sum(1 for k in self.jobs if k not in self._ended())
        if slots <= 0 or not self.queue:
            return
        executor = ex.local_executor(self.submitit_dir, timeout_min=self.settings.local_timeout_min,
                                     python=self._warm_python())
        while slots > 0 and self.queue:
            key = self.queue.pop(0)
            self._record(key, executor.submit(self.job_fn, *self._job_args(key)), "local")
            slots -= 1
        self.ledger.save()

    def _warm_python(self) -> str | None:
        """The warm start's client command for local jobs (started on first use); None: fresh interpreters."""
        if not self.settings.warm_start:
            return None
        if self.warm is None:
            self.warm = start_warm(self.submitit_dir / "zygote.log", self.job_fn.entrypoint)
        return self.warm.python

    def ready(self, key: str) -> bool:
        """A run may start: it depends on nothing, or its parent has kept the checkpoint it branches from."""
        after = self.specs[key].after
        if after is None:
            return True
        parent, step = after
        parent_dir = self.specs[parent].run_dir if parent in self.specs else None
        return parent_dir is not None and (parent_dir / names.CHECKPOINT_DIR / checkpoint_name(step)).is_file()

    def _check_waiting(self) -> list[str]:
        """Waiting runs that may start now; those whose parent can no longer provide the checkpoint fail."""
        go, still = [], []
        for key in self.waiting:
            parent, step = self.specs[key].after
            if self.ready(key):
                go.append(key)
            elif parent in self.outcome.failed:
                self.outcome.failed[key] = f"its parent run {parent} failed before keeping step {step}"
            elif parent in self._ended() or parent in self.outcome.skipped:
                self.outcome.failed[key] = (f"its parent run {parent} ended without a checkpoint at step {step} "
                                            "(train.milestone_steps must list it)")
            else:
                still.append(key)
        self.waiting = still
        return go

    def submit(self, keys: list[str]) -> None:
        later = [k for k in keys if not self.ready(k)]
        self.waiting += [k for k in later if k not in self.waiting]
        keys = [k for k in keys if k not in later]
        if not keys:
            return
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        if self.kind == "slurm":
            self._submit_slurm(keys)
            self.ledger.save()
        else:
            self.queue.extend(keys)
            self._fill_local_slots()

    def start(self) -> None:
        """Plan and submit. Runs already queued/running elsewhere are watched, not resubmitted."""
        finished, attached, pending = self.plan()
        self.outcome.skipped = finished
        for key in attached:
            self.jobs[key] = None  # watched through the ledger only
        self.submit(pending)

    # ------------------------------------------------------------------------------------------ watching
    def _ended(self) -> set[str]:
        return set(self.outcome.finished) | set(self.outcome.failed)

    def _is_active(self, key: str, active_slurm: dict[str, str]) -> bool:
        job, record = self.jobs.get(key), self.ledger.jobs[key]
        if record.executor == "slurm":
            return record.job_id in active_slurm
        if job is not None:
            return not job.done()
        return ex.local_job_active(record.job_id)

    def poll(self) -> bool:
        """Check every watched job once; retry or record failures. True when nothing is left to run."""
        watching = [k for k in self.jobs if k not in self._ended()]
        active_slurm = ex.active_slurm_jobs() if any(self.ledger.jobs[k].executor == "slurm"
                                                     for k in watching) else {}
        retry: list[str] = []
        for key in watching:
            if self._is_active(key, active_slurm):
                continue
            if run_finished(self.specs[key]):
                self.outcome.finished.append(key)
                continue
            record = self.ledger.jobs[key]
            record.error = self._failure_text(key, record)
            if record.attempts <= self.settings.max_retries:
                retry.append(key)
                del self.jobs[key]
            else:
                self.outcome.failed[key] = record.error
        self.ledger.save()
        if retry:
            self.submit(retry)
        if self.waiting:
            self.submit(self._check_waiting())
        if self.kind == "local":
            self._fill_local_slots()
        return not self.queue and not self.waiting and all(k in self._ended() for k in self.jobs)

    def _failure_text(self, key: str, record: JobRecord) -> str:
        job = self.jobs.get(key)
        reason = "the job ended before the run reached its last step"
        if job is not None:
            try:
                job.result()
            except Exception as exc:  # the job's own exception, with the remote traceback
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        tail = ex.log_tail(record.stderr, 15)
        return f"{reason}\n--- {record.stderr} (last lines) ---\n{tail}"

    def progress(self) -> list[RunProgress]:
        active_slurm = ex.active_slurm_jobs() if self.kind == "slurm" else {}
        rows = []
        for key, spec in self.specs.items():
            record = self.ledger.jobs.get(key)
            if key in self.queue or key in self.waiting:
                rows.append(read_progress(spec, record, active=True))
                rows[-1].status = "queued" if key in self.queue else f"waiting for step {spec.after[1]}"
                continue
            active = self._is_active(key, active_slurm) if record and key in self.jobs else None
            progress = read_progress(spec, record, active=active)
            if key in self.outcome.failed:
                progress.status = FAILED
            elif key in self.outcome.finished or key in self.outcome.skipped:
                progress.status = DONE
            rows.append(progress)
        return rows

    def run(self, on_update: Callable[[SweepDriver], None] | None = None) -> SweepOutcome:
        """Start, then poll every ``poll_s`` seconds until every run finished or failed for good."""
        try:
            self.start()
            while True:
                done = self.poll()
                if on_update is not None:
                    on_update(self)
                if done:
                    return self.outcome
                time.sleep(self.poll_s)
        finally:
            self.close()

    def close(self) -> None:
        self.tracking.close()
        if self.warm is not None:
            self.warm.stop()

