"""The report page and the `harness report` command on the recorded-runs fixture."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.collect import read_run_folders, tidy
from analysis.report import build_report

RUNS = Path(__file__).parent / "data" / "runs"
RUNS_V0 = Path(__file__).parent / "data" / "runs_v0"  # quickstart runs recorded before the estimator


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
    # One seed and no estimator noise: the printed answer keeps its "[n/a]" (not eaten as console markup).
    assert "additive − vanilla, val/loss at 4.29e+10 FLOPs: +0.0825 [n/a]" in " ".join(result.output.split())
    bad = CliRunner().invoke(app, ["report", "x", "--runs-dir", str(RUNS), "--plot", "bogus", "--out",
                                   str(tmp_path)])
    assert bad.exit_code != 0


@pytest.mark.parametrize("plot", ["kernels"])
def test_kernels_without_benchmarks_is_a_clear_error(tmp_path, plot):
    from analysis.collect import ReportInputError

    with pytest.raises(ReportInputError, match="--benchmarks"):
        build_report(None, tmp_path, "k", plots=(plot,))


def test_report_opens_with_the_answer_and_states_data_and_guard(tmp_path):
    from tests.analysis.recorded_runs import RecordedRun, width_vs_depth, write_run

    width_vs_depth(tmp_path / "runs", seeds=3, spread=0.05)
    write_run(tmp_path / "runs", RecordedRun(name="base", preset="base", seed=3, n_seeds=4, guard_rescued=True))
    frame = tidy(read_run_folders(tmp_path / "runs", "width_vs_depth"))
    report = build_report(frame, tmp_path / "out", "width_vs_depth", n_bootstrap=5)
    page = report.html.read_text()
    first = page.index("<h2>")
    assert page[first:].startswith("<h2>The question, answered</h2>")
    assert page.index("The question, answered") < page.index("Figure: scaling") < page.index("Table: fits")
    assert "medium − deep_pairformer, val/loss at 4e+10 FLOPs: -0.70 [-0.81, -0.59]" in page
    assert "val/loss at 4e+10 FLOPs: 6 of 6 comparisons resolved" in page
    assert "resolved: medium is better" in page and "resolved: large is better" in page
    assert "16 runs in 5 configurations" in page and "base 4" in page
    assert "Runs the stability guard rescued (skipped steps or rollbacks): base-s3" in page
    assert "<td>120</td>" in page and "<td>30000</td>" in page  # the data the study saw
    assert "trained on 120 structures (30000 tokens) and validated on 24 structures (6000 tokens)" in page
    md = report.markdown.read_text()
    assert md.index("## The question, answered") < md.index("## Data and runs") < md.index("## Figure: scaling")
    assert "sigma" in report.figures and page.count("data:image/png;base64,") == 2


def test_report_of_old_runs_says_what_cannot_be_answered(tmp_path):
    frame = tidy(read_run_folders(RUNS_V0, "width_vs_depth"))
    report = build_report(frame, tmp_path, "width_vs_depth", n_bootstrap=5)
    page = report.html.read_text()
    assert "not comparable at matched compute: the runs&#x27; compute ranges do not overlap" in page
    assert "not fitted: " in page and "None of the 5 runs recorded val/loss_noise" in page
    assert "not recorded (runs predate the data-count params)" in page


def test_cli_report_of_the_sweep_yaml(tmp_path):
    from harness.cli import app
    from tests.analysis.recorded_runs import width_vs_depth

    width_vs_depth(tmp_path / "runs", seeds=2)
    result = CliRunner().invoke(app, ["report", "sweeps/width_vs_depth.yaml", "--plot", "scaling", "--runs-dir",
                                      str(tmp_path / "runs"), "--bootstrap", "5", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "width_vs_depth: medium − deep_pairformer, val/loss" in " ".join(result.output.split())
    assert (tmp_path / "out" / "scaling.png").is_file() and (tmp_path / "out" / "answer.csv").is_file()
