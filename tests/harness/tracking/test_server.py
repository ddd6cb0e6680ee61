"""A real MLflow server on loopback: runs logged through it read back; `harness ui` serves the store."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from harness.tracking.store import get_or_create_experiment

pytestmark = pytest.mark.mlflow_server


def test_run_logged_through_server_reads_back(mlflow_server):
    exp = get_or_create_experiment(mlflow_server, "server-roundtrip")
    assert get_or_create_experiment(mlflow_server, "server-roundtrip") == exp
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.create_run(exp, run_name="roundtrip", tags={"preset": "base"})
    for step in range(3):
        client.log_metric(run.info.run_id, "train/loss", 1.0 / (step + 1), step=step)
    client.log_param(run.info.run_id, "model.c_z", "128")
    client.set_terminated(run.info.run_id)

    again = MlflowClient(tracking_uri=mlflow_server).get_run(run.info.run_id)
    assert again.data.params["model.c_z"] == "128"
    assert again.data.tags["preset"] == "base"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(m.step, round(m.value, 6)) for m in history] == [(0, 1.0), (1, 0.5), (2, 0.333333)]


def test_harness_ui_prints_runs_page_and_serves(tmp_path):
    from harness.tracking.store import default_uri

    uri = default_uri(tmp_path)
    get_or_create_experiment(uri, "older")
    sweep = get_or_create_experiment(uri, "width_vs_depth")
    MlflowClient(tracking_uri=uri).create_run(sweep, run_name="base")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "ui", "--runs-dir", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"harness ui exited: {proc.stderr.read()}")
            if line.startswith("http://127.0.0.1:"):
                url = line.strip()
        assert url and url.endswith(f"#/experiments/{sweep}/runs")  # the experiment with the latest run
        base = url.split("/#/")[0]
        with urllib.request.urlopen(f"{base}/health", timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(base, timeout=10) as resp:
            assert b"<html" in resp.read().lower()
        assert (tmp_path / "mlflow.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
