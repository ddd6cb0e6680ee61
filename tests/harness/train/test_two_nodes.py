"""A 2-node x 1-task DDP run (gloo, CPU) on the real test SLURM switched to two nodes, logging through a detached
MLflow server bound to every interface (so with credentials, which the jobs inherit from the driver's
environment) and advertised to the jobs by node name. The server is killed mid-run and
started again: training goes on, the run finishes, and MLflow holds one run with every metric exactly once.

The cluster is switched back to one node afterwards, even on failure (other tests share it)."""

import subprocess
import time
from pathlib import Path

import pytest
import submitit
from mlflow.tracking import MlflowClient

from harness.config import RunConfig
from harness.dispatch.job import TrainJob
from harness.dispatch.tracking import stable_port
from harness.tracking import auth, names
from harness.tracking.run_folder import RunFolder
from harness.tracking.server import serve_detached, stop_detached
from harness.tracking.store import default_uri, get_or_create_experiment
from tests.slurm.cluster import slurm_cluster, submitit_folder  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slurm, pytest.mark.mlflow_server, pytest.mark.slow, pytest.mark.two_nodes]
UP = Path(__file__).resolve().parents[3] / "slurm" / "testing" / "up.sh"
MAX_STEPS = 9


def idle_nodes() -> int:
    out = subprocess.run(["sinfo", "-h", "-N", "-t", "idle", "-o", "%N"], capture_output=True, text=True)
    return len(set(out.stdout.split()))


@pytest.fixture()
def two_node_cluster(slurm_cluster):  # noqa: F811
    subprocess.run(["bash", str(UP), "--two-nodes", "--no-install"], check=True, timeout=300,
                   capture_output=True)
    try:
        deadline = time.monotonic() + 120
        while idle_nodes() < 2:
            assert time.monotonic() < deadline, "two nodes did not come up"
            time.sleep(1)
        yield
    finally:
        subprocess.run(["bash", str(UP), "--no-install"], timeout=300, capture_output=True)


def test_two_node_ddp_one_run_survives_server_loss_ranks_draw_own_noise(two_node_cluster, submitit_folder,  # noqa: F811
                                                                          make_config, tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    backend = default_uri(runs_dir)
    port = stable_port(backend)
    url = serve_detached(runs_dir, backend, port=port, host="0.0.0.0", advertise_host="n1")
    assert url == f"http://n1:{port}"
    # Bound beyond loopback, the server wants credentials: the driver takes them into its environment (as
    # JobTracking does) and the SLURM job inherits them (sbatch --export=ALL), never on a command line.
    for var in auth.CLIENT_VARS:
        monkeypatch.delenv(var, raising=False)
    assert auth.use_credentials(runs_dir)
    # The paper recipe scaled down: a global batch over nodes with gradient accumulation (4 = 1 x 2 nodes x 2
    # micro-batches), bf16 trunk autocast and per-block activation checkpointing.
    raw = make_config(max_steps=MAX_STEPS, val_every=1000, val_batches=1, checkpoint_every=3, log_every=1,
                      threads=1, accelerator="cpu", devices=1, num_nodes=2, max_cycles=3,
                      global_batch=4).model_dump(mode="json")
    raw["model"]["policy"] |= {"trunk_precision": "bf16", "checkpoint_blocks": True}
    raw["tracking"] |= {"uri": url, "experiment": "two-nodes"}
    config = RunConfig.model_validate(raw)
    experiment_id = get_or_create_experiment(url, "two-nodes")
    folder = RunFolder(tmp_path / "run")

    executor = submitit.AutoExecutor(folder=submitit_folder, cluster="slurm")
    executor.update_parameters(name="two-nodes", nodes=2, tasks_per_node=1, cpus_per_task=1, mem_gb=4,
                               timeout_min=40)
    job = executor.submit(TrainJob(), config.model_dump(mode="json"), str(folder.path), experiment_id,
                          {names.TAG_SWEEP: "two-nodes"})
    deadline = time.monotonic() + 1500
    while folder.read_state().get("durable_step", -1) < 3:
        assert not job.done(), job.stderr()
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert stop_detached(runs_dir)
    down_at = folder.read_state()["step"]
    while folder.read_state()["step"] < down_at + 3:  # training goes on without a server
        assert not job.done(), job.stderr()
        time.sleep(0.5)
    assert serve_detached(runs_dir, backend, port=port, host="0.0.0.0", advertise_host="n1") == url
    results = job.results()  # one per task

    assert sorted(r["rank"] for r in results) == [0, 1]
    assert "distributed_backend=gloo" in job.stderr() + job.stdout()
    state = folder.read_state()
    assert state["status"] == "finished" and state["step"] == MAX_STEPS
    deadline = time.monotonic() + 60  # accounting may lag behind the job's end
    while (nodes := subprocess.run(["sacct", "-j", str(job.job_id), "-n", "-X", "-o", "NNodes"],
                                   capture_output=True, text=True).stdout.split()) != ["2"]:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    assert nodes == ["2"]

    password = auth.credentials(runs_dir).password
    assert not any(password in p.read_text(errors="ignore") for p in Path(submitit_folder).rglob("*") if p.is_file())
    client = MlflowClient(tracking_uri=url)
    runs = client.search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == [state["mlflow_run_id"]]
    assert runs[0].info.status == "FINISHED" and runs[0].data.tags[names.TAG_GUARD_RESCUED] == "false"
    for key in (names.LOSS, names.LR, names.GRAD_NORM):
        steps = sorted(m.step for m in client.get_metric_history(state["mlflow_run_id"], key))
        assert steps == list(range(1, MAX_STEPS + 1)), key
    assert sorted(m.step for m in client.get_metric_history(state["mlflow_run_id"], names.VAL_LOSS)) == [0, MAX_STEPS]
    seen = client.get_metric_history(state["mlflow_run_id"], names.EXAMPLES_SEEN)
    assert max(m.value for m in seen) == 4 * MAX_STEPS  # the global batch

    # Different ranks drew different noise at the same (step, micro-batch), and the same recycling cycles.
    by_rank = {r["rank"]: {(t["step"], t["micro"]): t for t in r["noise_trace"]} for r in results}
    common = sorted(set(by_rank[0]) & set(by_rank[1]))
    assert len(common) >= 8
    assert all(by_rank[0][s]["sigma"] != by_rank[1][s]["sigma"] for s in common)
    assert [by_rank[0][s]["cycles"] for s in common] == [by_rank[1][s]["cycles"] for s in common]
    assert len({by_rank[0][s]["cycles"] for s in common}) > 1  # the count does vary from step to step
