"""Two-process DDP (gloo, CPU) launched by the real one-node SLURM: one training run, one MLflow run."""

import pytest
import submitit
from mlflow.tracking import MlflowClient

from harness.dispatch.job import TrainJob
from harness.tracking import names
from harness.tracking.run_folder import RunFolder
from harness.tracking.store import get_or_create_experiment
from tests.slurm.cluster import slurm_cluster, submitit_folder  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slurm, pytest.mark.mlflow_server]


def test_two_task_ddp_under_slurm_logs_one_run(slurm_cluster, submitit_folder, mlflow_server, make_config,  # noqa: F811
                                               tmp_path):
    config = make_config(max_steps=8, val_every=100, checkpoint_every=4, log_every=2, threads=1,
                         accelerator="cpu", devices=2)
    config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"uri": mlflow_server})})
    experiment_id = get_or_create_experiment(mlflow_server, "ddp-slurm")
    run_dir = tmp_path / "run"

    executor = submitit.AutoExecutor(folder=submitit_folder, cluster="slurm")
    executor.update_parameters(name="ddp-test", nodes=1, tasks_per_node=2, cpus_per_task=1, mem_gb=4,
                               timeout_min=10)
    job = executor.submit(TrainJob(), config.model_dump(mode="json"), str(run_dir), experiment_id,
                          {names.TAG_SWEEP: "ddp-test"})
    results = job.results()  # one per task
    assert len(results) == 2

    state = RunFolder(run_dir).read_state()
    assert state["status"] == "finished" and state["step"] == 8
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == [state["mlflow_run_id"]]
    # Two ranks each saw one example per step.
    seen = client.get_metric_history(state["mlflow_run_id"], names.EXAMPLES_SEEN)
    assert max(m.value for m in seen) == 2 * 8
    assert "distributed_backend=gloo" in job.stderr() + job.stdout()
