"""A real MLflow server on loopback: runs logged through it read back; `harness ui` serves the store."""

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
    from harness.tracking.dashboard import runs_page_url, ui_host
    from harness.tracking.store import default_uri
    from scripts.mlflow_ui_screenshot import harness_ui

    uri = default_uri(tmp_path)
    get_or_create_experiment(uri, "older")
    sweep = get_or_create_experiment(uri, "width_vs_depth")
    MlflowClient(tracking_uri=uri).create_run(sweep, run_name="base")
    with harness_ui(tmp_path) as url:
        base = url.split("/#/")[0]
        assert base.startswith("http://[::1]:" if ui_host() == "::1" else "http://127.0.0.1:")
        assert url == runs_page_url(base, sweep)  # the experiment with the latest run
        with urllib.request.urlopen(f"{base}/health", timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(base, timeout=10) as resp:
            assert b"<html" in resp.read().lower()
        assert (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(("host", "url", "local"), [
    ("127.0.0.1", "http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("::1", "http://[::1]:5000", "http://[::1]:5000"),
    ("0.0.0.0", "http://0.0.0.0:5000", "http://127.0.0.1:5000"),
    ("::", "http://[::]:5000", "http://127.0.0.1:5000"),
    ("node-1.cluster", "http://node-1.cluster:5000", "http://node-1.cluster:5000"),
])
def test_urls_of_a_server_bound_to_host(host, url, local):
    from harness.tracking.server import http_url, local_url

    assert (http_url(host, 5000), local_url(host, 5000)) == (url, local)
