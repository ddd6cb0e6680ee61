"""The report page and the `harness report` command on the recorded-runs fixture."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.collect import read_run_folders, tidy
from analysis.report import build_report

RUNS = Path(__file__).parent / "data" / "runs"


def test_report_is_self_contained_and_lists_everything(tmp_path):
    frame = tidy(read_run_folders(RUNS, "lr_stability"))
    report = build_report(frame, tmp_path, "lr_stability", plots=("stability", "kernels"),
                          benchmarks=(RUNS / "benchmarks" / "triangle_attention.csv",), n_bootstrap=5)
    page = report.html.read_text()
    assert page.count("data:image/png;base64,") == 2 and 'src="stability' not in page
    png = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(png)[:4] == b"\x89PNG"
    assert "large_lr_fixed" in page and "<table" in page
    md = report.markdown.read_text()
    assert "![stability](stability.png)" in md and "| config |" in md
    assert all(p.is_file() for p in report.files())


def test_cli_report_writes_the_report(tmp_path):
    from harness.cli import app

    result = CliRunner().invoke(app, ["report", "attention_ablation", "--runs-dir", str(RUNS), "--plot",
                                      "attention", "--bootstrap", "5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "attention.png").is_file() and (tmp_path / "report.html").is_file()
    bad = CliRunner().invoke(app, ["report", "x", "--runs-dir", str(RUNS), "--plot", "bogus", "--out",
                                   str(tmp_path)])
    assert bad.exit_code != 0


@pytest.mark.parametrize("plot", ["kernels"])
def test_kernels_without_benchmarks_is_a_clear_error(tmp_path, plot):
    from analysis.collect import ReportInputError

    with pytest.raises(ReportInputError, match="--benchmarks"):
        build_report(None, tmp_path, "k", plots=(plot,))
