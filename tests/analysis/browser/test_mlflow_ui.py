"""A real MLflow server, a small sweep logged to it, the report run, and the UI rendered by headless Chromium."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.collect import collect, tidy
from analysis.report import build_report, log_report

RUNS = Path(__file__).parents[1] / "data" / "runs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser, pytest.mark.mlflow_server, pytest.mark.slow]


def dump_dom(url: str, profile: Path) -> str:
    if CHROMIUM is None:
        if os.environ.get("SEEDFOLD_REQUIRE_BROWSER"):
            pytest.fail("SEEDFOLD_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def test_runs_and_report_appear_in_the_mlflow_ui(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    if CHROMIUM is None and not os.environ.get("SEEDFOLD_REQUIRE_BROWSER"):
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    spec = importlib.util.spec_from_file_location("make_fixture", RUNS / "make_fixture.py")
    make_fixture = importlib.util.module_from_spec(spec)
    sys.modules["make_fixture"] = make_fixture
    spec.loader.exec_module(make_fixture)

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment("report-browser-test")
    make_fixture.run_sweep("attention_ablation", tracking_uri=mlflow_server, experiment_id=experiment_id,
                           max_steps=40)
    frame = tidy(collect(tracking_uri=mlflow_server, sweep="attention_ablation"))
    report = build_report(frame, tmp_path / "report", "attention_ablation", plots=("attention",), n_bootstrap=5)
    run_id = log_report(report, mlflow_server, experiment_id=experiment_id)

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.html", "report.md", "attention.png", "attention.svg"} <= artifacts

    dom = dump_dom(f"{mlflow_server}/#/experiments/{experiment_id}/runs", tmp_path / "profile")
    for name in ("attn_vanilla", "attn_additive", "attn_gated", "report-attention_ablation"):
        assert name in dom, name
