"""submitit executors for a sweep: SLURM (job arrays) or local (subprocesses), and liveness of their jobs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import submitit

from harness.dispatch.resources import SlurmResources

ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED",
                       "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED"}


def slurm_executor(folder: Path, resources: SlurmResources, *, name: str,
                   array_parallelism: int | None = None) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm",
                                     slurm_max_num_timeout=resources.max_requeues)
    params = resources.to_submitit()
    if array_parallelism is not None:
        params["slurm_array_parallelism"] = array_parallelism
    executor.update_parameters(name=name, **params)
    return executor


def local_executor(folder: Path, *, timeout_min: int, max_requeues: int = 3,
                   python: str | None = None) -> submitit.LocalExecutor:
    """``python``: the interpreter command of each task (``harness.dispatch.warm.WarmStart.python`` for a warm
    start); None = this interpreter, a fresh process per task."""
    executor = submitit.LocalExecutor(folder=folder, max_num_timeout=max_requeues, python=python)
    # LocalExecutor's default limit is 2 minutes.
    executor.update_parameters(timeout_min=timeout_min)
    return executor


def active_slurm_jobs() -> dict[str, str]:
    """``{job id: state}`` of this user's queued or running jobs; array tasks one by one (``123_4``)."""
    try:
        out = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    jobs = dict(line.split(maxsplit=1) for line in out.splitlines() if len(line.split()) == 2)
    return {job: state for job, state in jobs.items() if state in ACTIVE_SLURM_STATES}


def slurm_job_active(job_id: str) -> bool:
    """The job (or array task ``123_4``) is queued or running according to ``squeue``."""
    return job_id in active_slurm_jobs()


def local_job_active(job_id: str) -> bool:
    """The local job's controller process (pid = job id) is alive and is a submitit controller."""
    proc = Path("/proc") / job_id
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[-1].startswith("Z") and b"submitit" in cmdline


def job_active(executor: str, job_id: str) -> bool:
    return slurm_job_active(job_id) if executor == "slurm" else local_job_active(job_id)


def cancel_job(executor: str, job_id: str) -> None:
    """scancel a SLURM job; SIGINT a local job's controller, which stops its tasks (submitit ignores SIGTERM,
    which on SLURM only announces the SIGKILL)."""
    import os
    import signal

    if executor == "slurm":
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30, check=False)
    elif local_job_active(job_id):
        os.kill(int(job_id), signal.SIGINT)


def log_tail(path: str | Path, lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.rstrip().splitlines()[-lines:])
