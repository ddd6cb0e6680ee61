"""The MLflow server goes away while a real training run logs to it: training keeps going, and every metric
reaches MLflow exactly once when the server is back (by the run's uploader, or by `harness tracking sync`)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from harness.tracking import names
from harness.tracking.run_folder import RunFolder
from harness.tracking.server import start_server

pytestmark = [pytest.mark.mlflow_server, pytest.mark.slow]


def launch(make_config, tmp_path, url, max_steps):
    config = make_config(max_steps=max_steps, val_every=1000, checkpoint_every=5, log_every=1)
    config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"uri": url})})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "train", str(path), "--run-dir", str(run_dir)]
    log = open(tmp_path / "train.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True), RunFolder(run_dir)


def tail(proc) -> str:
    return Path(proc.args[-1], "..", "train.log").resolve().read_text()[-3000:]


def wait_for(predicate, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, tail(proc)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def assert_complete(url, folder, max_steps):
    state = folder.read_state()
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(state["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    for key in (names.LOSS, names.GRAD_NORM, names.EXAMPLES_SEEN):
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        first = 0 if key == names.EXAMPLES_SEEN else 1  # examples seen rides along with the step-0 validation
        assert steps == list(range(first, max_steps + 1)), key
    assert len(client.search_runs([state["experiment_id"]])) == 1


def test_training_runs_through_an_outage_and_the_uploader_backfills(make_config, tmp_path):
    root = tmp_path / "mlflow"
    server = start_server(root)
    port, backend = server.url.rsplit(":", 1)[1], server.backend_uri
    proc, folder = launch(make_config, tmp_path, server.url, 80)
    try:
        wait_for(lambda: folder.read_state().get("durable_step", -1) >= 5, proc)
        server.stop()
        down_at, t_down = folder.read_state()["step"], time.monotonic()
        wait_for(lambda: folder.read_state()["step"] >= down_at + 8, proc, timeout=120)
        server = start_server(root, port=int(port), backend_uri=backend)
        progressed = folder.read_state()["step"] - down_at
        outage_s = time.monotonic() - t_down
        assert proc.poll() is None, "the run ended before the server was back; make it longer"
        assert proc.wait(timeout=300) == 0, tail(proc)
        assert "is back after" in tail(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    print(f"trained {progressed} steps during a {outage_s:.0f} s outage")
    with start_server(root, port=int(port), backend_uri=backend) as server:
        assert_complete(server.url, folder, 80)


def test_outage_that_outlasts_the_run_ends_it_anyway_and_sync_backfills(make_config, tmp_path):
    root = tmp_path / "mlflow"
    server = start_server(root)
    port, backend = server.url.rsplit(":", 1)[1], server.backend_uri
    proc, folder = launch(make_config, tmp_path, server.url, 30)
    try:
        wait_for(lambda: folder.read_state().get("durable_step", -1) >= 5, proc)
        server.stop()
        assert proc.wait(timeout=300) == 0, tail(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert folder.read_state()["status"] == "finished"
    assert "rows wait in" in tail(proc)  # the failure was logged, not raised
    with start_server(root, port=int(port), backend_uri=backend) as server:
        out = subprocess.run([sys.executable, "-m", "harness", "tracking", "sync", str(folder.path)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "sent" in out.stdout
        assert_complete(server.url, folder, 30)
