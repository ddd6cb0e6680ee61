"""Every figure is written as a valid, non-trivial PNG and SVG from the recorded-runs fixture."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.plots import plot_attention, plot_kernels, plot_scaling, plot_stability, read_kernel_benchmarks
from analysis.plots.stability import spike_step

RUNS = Path(__file__).parent / "data" / "runs"


def check_image(paths: list[Path]) -> None:
    png = next(p for p in paths if p.suffix == ".png")
    svg = next(p for p in paths if p.suffix == ".svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(png)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 600
    assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert png.stat().st_size > 30_000
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_scaling_plot(tmp_path):
    frame = tidy(read_run_folders(RUNS, "width_vs_depth"))
    paths = plot_scaling(frame, tmp_path, n_bootstrap=10)
    check_image(paths)
    svg = (tmp_path / "scaling.svg").read_text()
    for text in ("cumulative training FLOPs", "parameters", "deeper Pairformer", "L(N) fit", "L(C) fit"):
        assert text in svg


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
