"""`harness tracking sync` and a live trainer never copy one run folder at once: a real trainer waits while a sync
holds its folder, and a sync refuses a folder whose trainer is alive (naming it) while syncing the others."""

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import HarnessError
from harness.tracking.record import MetricRecord
from harness.tracking.run_folder import RunFolder
from harness.tracking.trainer_lock import folder_lock
from tests.harness.train.conftest import mini_config

ROOT = Path(__file__).resolve().parents[3]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"trainer exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sync_refuses_a_live_trainers_folder_and_a_trainer_waits_for_a_sync(tmp_path):
    config = mini_config(tmp_path, max_steps=40, val_every=1000, val_batches=1, checkpoint_every=40,
                         accelerator="cpu", devices=1)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    # The store exists before two processes open it (as a sweep driver makes it before its jobs): two first
    # opens of one sqlite file race in MLflow's schema migration, which is not what this test is about.
    MlflowClient(tracking_uri=config.tracking_uri()).search_experiments()
    live, other = RunFolder(tmp_path / "live"), RunFolder(tmp_path / "other")
    # A finished folder beside it, never uploaded (an outage outlived its run).
    other.path.mkdir()
    other.config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    other.update_state(status="finished", step=2)
    MetricRecord(other.metrics_path).append(1, {"train/loss": 1.0})

    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    stderr = tmp_path / "trainer.stderr"
    with folder_lock(live, owner="harness tracking sync", wait=False), open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "harness", "train", str(tmp_path / "run.yaml"),
                                 "--run-dir", str(live.path)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=err)
        try:
            _wait(lambda: "waiting for harness tracking sync" in stderr.read_text(), 120, "the trainer to wait",
                  proc)
            time.sleep(2)
            assert not live.state_path.exists()  # it has not started its session
        except BaseException:
            proc.kill()
            raise
    try:
        _wait(lambda: live.read_state().get("status") == "running", 300, "training to start", proc)
        result = CliRunner().invoke(app, ["tracking", "sync", str(live.path), str(other.path)])
        assert isinstance(result.exception, HarnessError) and result.exception.exit_code == 2, result.output
        message = " ".join(str(result.exception).split())
        assert f"{live.path}: in use by trainer (pid {proc.pid} on " in message
        assert "sync the folder after it ends" in message
        assert other.read_state()["mlflow_run_id"]  # the other folder was synced all the same
        assert "sent 1 metric points" in " ".join(result.output.split())
        assert proc.wait(600) == 0
    finally:
        proc.kill()
    assert live.read_state()["status"] == "finished"
    result = CliRunner().invoke(app, ["tracking", "sync", str(live.path)])
    assert result.exit_code == 0, result.output
