"""The test cluster from slurm/testing/up.sh is a real SLURM: sbatch, accounting, fake GPUs, submitit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cloudpickle
import pytest
import submitit

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

# Workers cannot import this test module by name (pytest puts its folder on sys.path, SLURM jobs do not).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _sacct_state(job_id: str, wait_s: float = 60) -> str:
    """The job's state in accounting, once it is COMPLETED or ``wait_s`` has passed (slurmdbd may lag)."""
    deadline = time.monotonic() + wait_s
    while True:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"], capture_output=True,
                             text=True, check=True, timeout=30).stdout
        state = (out.strip().splitlines() or [""])[0]
        if state == "COMPLETED" or time.monotonic() > deadline:
            return state
        time.sleep(1)


def test_sbatch_job_writes_file_and_is_accounted(tmp_path):
    out = tmp_path / "out.txt"
    done = subprocess.run(
        ["sbatch", "--parsable", "--wait", "--time=2", f"--output={tmp_path}/slurm-%j.log",
         "--wrap", f"echo job=$SLURM_JOB_ID node=$SLURMD_NODENAME > {out}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip().split(";")[0]
    assert out.read_text().split()[0] == f"job={job_id}"
    assert _sacct_state(job_id) == "COMPLETED"


def test_fake_gpus_set_cuda_visible_devices(tmp_path):
    out = tmp_path / "gpus.txt"
    done = subprocess.run(
        ["sbatch", "--parsable", "--wait", "--time=2", "--gpus=2", f"--output={tmp_path}/slurm-%j.log",
         "--wrap", f"echo $CUDA_VISIBLE_DEVICES > {out}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_text().strip() == "0,1"


def _describe_task(x: int) -> dict:
    return {"square": x * x, "job_id": os.environ["SLURM_JOB_ID"], "pid": os.getpid()}


def _fail() -> None:
    raise ValueError("deliberate failure inside the job")


def test_submitit_auto_executor_returns_result(submitit_folder):
    executor = submitit.AutoExecutor(folder=submitit_folder, cluster="slurm")
    executor.update_parameters(timeout_min=2, cpus_per_task=1, mem_gb=1)
    job = executor.submit(_describe_task, 7)
    result = job.result()
    assert result["square"] == 49
    assert result["job_id"] == job.job_id
    assert result["pid"] != os.getpid()
    # Read through sacct (needs slurmdbd). The result file is written before the job ends, and slurmctld hands
    # the job's record to slurmdbd after that, so sacct may lag behind for a few seconds (once seen: PENDING).
    deadline = time.monotonic() + 60
    while (state := job.get_info(mode="force").get("State")) != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(1)
    assert state == "COMPLETED"


def test_submitit_job_array_and_failure(submitit_folder):
    executor = submitit.AutoExecutor(folder=submitit_folder, cluster="slurm")
    executor.update_parameters(timeout_min=2, cpus_per_task=1, mem_gb=1, slurm_array_parallelism=2)
    jobs = executor.map_array(_describe_task, [1, 2, 3])
    assert [j.result()["square"] for j in jobs] == [1, 4, 9]
    assert len({j.job_id.split("_")[0] for j in jobs}) == 1  # one array

    failing = executor.submit(_fail)
    with pytest.raises(submitit.core.utils.FailedJobError, match="deliberate failure inside the job"):
        failing.result()
