"""A real MLflow server, a small sweep logged to it, the report run, and the UI rendered by headless Chromium;
`harness ui`'s first page for real recorded runs."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.collect import collect, tidy
from analysis.report import build_report, log_report
from scripts.mlflow_ui_screenshot import FIXTURE, chromium, chromium_exe, harness_ui, record_runs
from scripts.mlflow_ui_screenshot import log_report as cli_log_report

RUNS = Path(__file__).parents[1] / "data" / "runs"
CHROMIUM = chromium_exe()

pytestmark = [pytest.mark.browser, pytest.mark.mlflow_server, pytest.mark.slow]


def require_chromium() -> None:
    if CHROMIUM is None:
        if os.environ.get("SEEDFOLD_REQUIRE_BROWSER"):
            pytest.fail("SEEDFOLD_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium not installed (apt-get install -y chromium)")


def dump_dom(url: str, profile: Path) -> str:
    require_chromium()
    return chromium(url, profile)


def test_runs_and_report_appear_in_the_mlflow_ui(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    require_chromium()
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


class RunsTable(HTMLParser):
    """The rendered runs table: ``rows[MLflow run id][column id]`` = the text its cell shows (ag-grid marks each
    row with the run id and each cell with the column id; a row's cells follow its opening tag)."""

    def __init__(self, dom: str):
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._row = self._col = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "row-id" in attrs:
            self._row, self._col = attrs["row-id"], None
        elif self._row and attrs.get("role") == "gridcell" and "col-id" in attrs:
            self._col = attrs["col-id"]
            self.rows.setdefault(self._row, {})[self._col] = ""

    def handle_data(self, data):
        if self._row and self._col:
            self.rows[self._row][self._col] += data.strip()


def last_value(run_folder: Path, key: str) -> float:
    """What the runs table shows for a metric: its value at the run's last logged step."""
    metrics = pd.read_csv(run_folder / "metrics.csv")
    return float(metrics[metrics["key"] == key].sort_values("step", kind="stable")["value"].iloc[-1])


def test_harness_ui_opens_the_study_runs_table(tmp_path):
    """Quickstart runs sent into a fresh store whose experiment predates the dashboard tags, and their report: the
    page `harness ui` prints shows, on a browser's first visit, every run's val/loss and val/lddt, its width,
    depth, lr and seed, beside the report run, in model-training mode and without the Assistant."""
    from mlflow.tracking import MlflowClient

    from harness.tracking.dashboard import EXPERIMENT_KIND_TAG, VIEW_TAG, runs_page_url, ui_host
    from harness.tracking.store import default_uri

    require_chromium()
    folders = [FIXTURE / n for n in ("base-s0-bbb97a1a7cfd", "large-s0-56546489feba",
                                     "deep_pairformer-s0-7d62ef2fce55")]
    runs_dir = tmp_path / "runs"
    client = MlflowClient(default_uri(runs_dir))
    experiment_id = client.create_experiment("width_vs_depth")  # as the harness created them before
    uri = record_runs(folders, runs_dir)
    output = " ".join(cli_log_report(uri, "width_vs_depth", tmp_path / "report").split())
    assert f"experiment id {experiment_id}, beside the report's 3 runs" in output
    (report,) = client.search_runs([experiment_id], filter_string="tags.kind = 'report'")
    assert report.info.run_name == "report-width_vs_depth"
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags

    with harness_ui(runs_dir) as url:
        base = url.split("/#/")[0]
        assert base.startswith("http://[::1]:" if ui_host() == "::1" else "http://127.0.0.1:")
        assert url == runs_page_url(base, experiment_id)
        dom = chromium(url, tmp_path / "profile")
        chromium(url, tmp_path / "profile", screenshot=tmp_path / "mlflow_runs.png")

    tags = client.get_experiment(experiment_id).tags  # fixed up when `harness ui` opened the store
    assert tags[EXPERIMENT_KIND_TAG] == "custom_model_development" and VIEW_TAG in tags
    assert (tmp_path / "mlflow_runs.png").read_bytes()[:4] == b"\x89PNG"
    rows = RunsTable(dom).rows
    assert len(rows) == 4
    for folder in folders:
        run_id = json.loads((runs_dir / "folders" / "width_vs_depth" / folder.name / "state.json").read_text())[
            "mlflow_run_id"]
        config = yaml.safe_load((folder / "config.yaml").read_text())
        shown = rows[run_id]
        assert shown["attributes.`Run Name`"].endswith(folder.name)  # after the run's colour, "#445461"
        for key in ("val/loss", "val/lddt"):
            assert shown[f"metrics.`{key}`"] == repr(last_value(folder, key)), (folder.name, key)
        for key in ("model.c_z", "model.n_pairformer_blocks", "model.n_diffusion_blocks", "train.lr"):
            section, field = key.split(".")
            assert shown[f"params.`{key}`"] == str(config[section][field]), (folder.name, key)
        assert shown["params.`seed`"] == str(config["seed"])
    assert rows[report.info.run_id]["metrics.`val/loss`"] == "-"
    # Model-training navigation, not GenAI's (Overview, Judges, Evaluation runs); no Assistant on [::1].
    assert ">Model registry<" in dom and ">Judges<" not in dom and ">Evaluation runs<" not in dom
    if ui_host() == "::1":
        assert "MLflow Assistant" not in dom
