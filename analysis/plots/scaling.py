"""Scaling curves (the paper's Figure 2): a metric versus step, cumulative FLOPs and parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from analysis.collect import ReportInputError, final_values
from analysis.fits import PowerLawFit, ScalingFits, scaling_fits, to_error
from analysis.plots.style import (
    AXIS_MARKERS,
    axis_label,
    new_figure,
    per_run,
    run_colours,
    run_labels,
    save,
    styled,
)


@styled
def plot_scaling(frame: pd.DataFrame, out_dir: str | Path,
                 metrics: tuple[str, ...] = ("val/lddt", "val/loss"),
                 fits: dict[str, ScalingFits] | None = None, stem: str = "scaling",
                 n_bootstrap: int = 200) -> list[Path]:
    """One row of panels per metric: versus training step, cumulative FLOPs (log) and parameters (log).

    frame: tidy (run, step) table. One line per configuration; colour hue = scaling axis (width blues,
    deeper Pairformer oranges, deeper structure module greens), marker = axis on the parameters panel.
    Fitted power laws (with bootstrap bands) are drawn on the FLOPs panel (compute frontier fit) and the
    parameters panel (final-value fit); ``fits`` (keyed by metric) are computed when not given.
    Metrics nobody logged are skipped. Returns the written PNG and SVG paths.
    """
    metrics = tuple(m for m in metrics if m in frame and frame[m].notna().any())
    if not metrics:
        raise ReportInputError("scaling plot: none of the requested metrics was logged by any run")
    fits = dict(fits or {})
    runs = per_run(frame)
    colours, labels = run_colours(runs), run_labels(runs)
    fig, axes = new_figure(len(metrics), 3)
    for row, metric in enumerate(metrics):
        fit = fits.get(metric) or scaling_fits(frame, metric, n_bootstrap=n_bootstrap)
        fits[metric] = fit
        ax_step, ax_flops, ax_params = axes[row]
        logged = frame.dropna(subset=[metric])
        order = runs.sort_values(["axis", "params", "run"], ascending=[False, True, True])["run"]
        for run in order:
            curve = logged[logged["run"] == run]
            if curve.empty:
                continue
            style = dict(color=colours[run], label=labels[run], lw=1.8)
            ax_step.plot(curve["step"], curve[metric], **style)
            spent = curve[curve["flops"] > 0]  # the validation at initialisation has no place on a log axis
            ax_flops.plot(spent["flops"], spent[metric], **style)
        finals = final_values(frame, metric)
        for axis, group in finals.groupby("axis"):
            ax_params.scatter(group["params"], group[metric], c=[colours[r] for r in group["run"]],
                              marker=AXIS_MARKERS.get(axis, "o"), s=60, edgecolor="black", zorder=3,
                              label=axis)
        line = _draw_fit(ax_flops, fit.compute, metric, logged["flops"].dropna(), "L(C) fit")
        if line is not None:
            ax_flops.legend(handles=[line], loc="best")
        _draw_fit(ax_params, fit.params, metric, finals["params"], "L(N) fit")
        ax_step.set_xlabel(axis_label("step"))
        ax_flops.set_xlabel(axis_label("flops"))
        ax_params.set_xlabel(axis_label("params"))
        for ax in (ax_flops, ax_params):
            ax.set_xscale("log")
            _thin_log_labels(ax.xaxis)
        if "loss" in metric:
            for ax in axes[row]:
                ax.set_yscale("log")
                _thin_log_labels(ax.yaxis)
        for ax in axes[row]:
            ax.set_ylabel(axis_label(metric))
        ax_step.set_title(f"{axis_label(metric)} vs step")
        ax_flops.set_title(f"{axis_label(metric)} vs compute")
        ax_params.set_title(f"final {axis_label(metric)} vs size")
        ax_params.legend(loc="best")
    axes[0][0].legend(loc="best", title="configuration")
    return save(fig, out_dir, stem)


def _draw_fit(ax: Axes, fit: PowerLawFit | None, metric: str, xs: pd.Series, label: str) -> Line2D | None:
    """Draw the fitted law (and its bootstrap band) in the metric's own units, extended 30% to the right."""
    if fit is None or xs.empty or (xs <= 0).all():
        return None
    xs = xs[xs > 0]
    grid = np.geomspace(xs.min(), xs.max() * 1.3, 100)
    low, high = fit.predict_interval(grid)
    centre = fit.predict(grid)
    if to_error(metric, np.zeros(1))[1] != metric:  # a score fitted as 1 − value: map back
        centre, low, high = 1 - centre, 1 - high, 1 - low
    text = f"{label}: α={fit.alpha:.2f} [{fit.intervals['alpha'][0]:.2f}, {fit.intervals['alpha'][1]:.2f}]"
    (line,) = ax.plot(grid, centre, color="black", ls="--", lw=1.2, label=text)
    ax.fill_between(grid, low, high, color="black", alpha=0.12, lw=0)
    return line


def _thin_log_labels(axis) -> None:
    """Over more than a decade, label decades only: matplotlib's minor labels (2x10^11, 3x10^11, ...) collide."""
    low, high = axis.get_view_interval()
    if low > 0 and high / low > 10:
        axis.set_minor_formatter(NullFormatter())
