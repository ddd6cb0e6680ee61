"""Every figure is written as a valid, non-trivial PNG and SVG from the recorded-runs fixture."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.plots import plot_attention, plot_kernels, plot_scaling, plot_stability, read_kernel_benchmarks
from analysis.plots.sigma import plot_sigma
from analysis.plots.stability import spike_step
from tests.analysis.recorded_runs import RecordedRun, width_vs_depth, write_run

RUNS = Path(__file__).parent / "data" / "runs"
RUNS_V0 = Path(__file__).parent / "data" / "runs_v0"  # quickstart runs recorded before the estimator


def check_image(paths: list[Path]) -> None:
    png = next(p for p in paths if p.suffix == ".png")
    svg = next(p for p in paths if p.suffix == ".svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(png)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 600
    assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert png.stat().st_size > 30_000
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_scaling_plot_of_old_runs_draws_no_refused_law(tmp_path):
    frame = tidy(read_run_folders(RUNS_V0, "width_vs_depth"))
    paths = plot_scaling(frame, tmp_path, n_bootstrap=10)
    check_image(paths)
    svg = (tmp_path / "scaling.svg").read_text()
    for text in ("cumulative training FLOPs", "parameters", "deeper Pairformer", "L(N) not fitted",
                 "L(C) not fitted", "backtest not run", "compute frontier", "untrained (step 0)"):
        assert text in svg, text
    assert "L(C) fit" not in svg and "L(N) fit" not in svg


def test_scaling_plot_of_seeded_runs_shows_baselines_budget_and_guard_marks(tmp_path):
    width_vs_depth(tmp_path / "runs", seeds=2)
    write_run(tmp_path / "runs", RecordedRun(name="base", preset="base", seed=2, n_seeds=3, guard_rescued=True))
    frame = tidy(read_run_folders(tmp_path / "runs", "width_vs_depth"))
    check_image(plot_scaling(frame, tmp_path, n_bootstrap=10, budgets={"val/loss": 4e10}))
    svg = (tmp_path / "scaling.svg").read_text()
    for text in ("medium (2 seeds)", "base (3 seeds) † 1 guard-rescued", "geometric baseline: 0.12",
                 "matched-compute budget", "compute frontier (seed means)"):
        assert text in svg, text


def test_sigma_profile(tmp_path):
    width_vs_depth(tmp_path / "runs", seeds=2)
    frame = tidy(read_run_folders(tmp_path / "runs", "width_vs_depth"))
    paths = plot_sigma(frame, tmp_path)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "noise level σ (Å)" in (tmp_path / "sigma.svg").read_text()
    with pytest.raises(ReportInputError, match="no run logged the per-σ diffusion loss"):
        plot_sigma(tidy(read_run_folders(RUNS_V0, "width_vs_depth")), tmp_path)


def test_attention_stability_kernel_plots(tmp_path):
    check_image(plot_attention(tidy(read_run_folders(RUNS, "attention_ablation")), tmp_path))
    stability = tidy(read_run_folders(RUNS, "lr_stability"))
    check_image(plot_stability(stability, tmp_path))
    assert "warmup=100" in (tmp_path / "stability.svg").read_text()
    bench = read_kernel_benchmarks([RUNS / "benchmarks" / "triangle_attention.csv"])
    check_image(plot_kernels(bench, tmp_path))


def test_spike_detection():
    import pandas as pd

    curve = pd.DataFrame({"step": range(10, 110, 10), "train/grad_norm": [1, 1.2, 0.9, 1.1, 1, 1, 30, 2, 1, 1]})
    assert spike_step(curve) == 70
    assert spike_step(curve.assign(**{"train/grad_norm": 1.0})) is None


def test_plot_input_errors(tmp_path):
    frame = tidy(read_run_folders(RUNS, "width_vs_depth"))
    with pytest.raises(ReportInputError, match="fewer than two attention variants"):
        plot_attention(frame, tmp_path)
    bad = tmp_path / "bench.csv"
    bad.write_text("variant,n\nvanilla,3\n")
    with pytest.raises(ReportInputError, match="bench.csv: missing columns"):
        read_kernel_benchmarks([bad])
