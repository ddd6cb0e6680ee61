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
    assert page.count("data:image/png;base64,") == len(report.figures) and 'src="stability' not in page
    assert {"stability", "kernels"} <= set(report.figures)
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
    # One seed per variant: the printed headline says nothing is resolved, and keeps its brackets.
    out = " ".join(result.output.split())
    assert "At matched steps, budgets" in out and "no comparison on val/loss is resolved" in out
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
    assert page[first:].startswith("<h2>The answer</h2>")
    # Headline, then the summary table, then the differences figure, then the collapsed detail.
    assert (page.index("At matched steps, budgets 400 steps") < page.index("<table")
            < page.index('alt="headline differences"') < page.index("<details>"))
    # Every run completed 400 steps: at 400 steps medium − base = (9 − 2·log10(80)) − (10 − 2·log10(40)).
    assert "medium − base" in page and "-1.602" in page
    assert "resolved: medium better" in page and "resolved: large better" in page
    assert "matched compute (FLOPs): not in this design" in page
    assert "17 runs in 5 configurations" not in page and "16 runs in 5 configurations" in page and "base 4" in page
    assert "Runs the stability guard rescued (skipped steps or rollbacks): base-s3" in page
    assert "<td>120</td>" in page and "<td>30000</td>" in page  # the data the study saw
    assert "trained on 120 structures (30000 tokens) and validated on 24 structures (6000 tokens)" in page
    md = report.markdown.read_text()
    assert md.index("## The answer") < md.index("<summary>How to read it</summary>") < md.index(
        "<summary>Data and runs</summary>")
    assert "sigma" in report.figures and page.count("data:image/png;base64,") == len(report.figures)


def test_report_of_old_runs_says_what_cannot_be_answered(tmp_path):
    frame = tidy(read_run_folders(RUNS_V0, "width_vs_depth"))
    report = build_report(frame, tmp_path, "width_vs_depth", n_bootstrap=5)
    page = report.html.read_text()
    assert "not fitted: " in page and "None of the 5 runs recorded val/loss_noise" in page
    assert "not recorded (runs predate the data-count params)" in page
    assert "one seed of" in page  # one seed per configuration: nothing is called resolved


def test_cli_report_of_the_sweep_yaml(tmp_path):
    from harness.cli import app
    from tests.analysis.recorded_runs import width_vs_depth

    width_vs_depth(tmp_path / "runs", seeds=2)
    result = CliRunner().invoke(app, ["report", "sweeps/width_vs_depth.yaml", "--plot", "scaling", "--runs-dir",
                                      str(tmp_path / "runs"), "--bootstrap", "5", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "At matched steps, budgets 400 steps: val/loss (lower is better)" in " ".join(result.output.split())
    assert (tmp_path / "out" / "curves.png").is_file()
    assert (tmp_path / "out" / "answer_width_vs_depth_steps.csv").is_file()


def test_a_report_over_runs_of_two_profiles_is_refused_naming_them(tmp_path):
    from analysis.collect import ReportInputError
    from tests.analysis.recorded_runs import RecordedRun, study, write_run

    study(tmp_path / "runs", budgets=(1e10,), seeds=2)
    write_run(tmp_path / "runs", RecordedRun(name="base", preset="base", max_steps=100, seed=9, n_seeds=2,
                                             study_budgets="flops:1e+10", profile="mini"))
    frame = tidy(read_run_folders(tmp_path / "runs", "width_vs_depth"))
    with pytest.raises(ReportInputError, match="the runs come from 2 profiles .*mini: base-lr0.002-S100-s9"):
        build_report(frame, tmp_path / "out", "width_vs_depth")
