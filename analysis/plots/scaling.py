"""Scaling curves (the paper's Figure 2): a metric versus step, cumulative FLOPs and parameters.

Seeds are aggregated per configuration (mean line, interval band; each seed's own curve faint); the compute
panel draws every logged point, the compute-efficient frontier and the matched-compute budget of the
headline comparison; the size panel draws each configuration's final value with its interval and the
extrapolation backtest's prediction with its interval. A law :mod:`analysis.fits` refused is not drawn: the
panel says "not fitted: <reason>" instead. Untrained (step-0) and geometric baselines are reference lines.
Guard-rescued runs are dashed and marked ``†`` in the legend.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from analysis.baselines import references
from analysis.collect import ReportInputError, rescued
from analysis.fits import LAW_BACKTEST, LAW_C, LAW_N, PowerLawFit, ScalingFits, scaling_fits, to_error
from analysis.plots.style import (
    AXIS_MARKERS,
    axis_label,
    config_colours,
    config_labels,
    new_figure,
    per_config,
    save,
    styled,
)
from analysis.seeds import curves_by_config, final_by_config

REFERENCE_STYLES = {"untrained (step 0)": ":", "geometric baseline": "-."}


@styled
def plot_scaling(frame: pd.DataFrame, out_dir: str | Path,
                 metrics: tuple[str, ...] = ("val/lddt", "val/loss"),
                 fits: dict[str, ScalingFits] | None = None, stem: str = "scaling",
                 n_bootstrap: int = 200, budgets: dict[str, float] | None = None, draw_laws: bool = True,
                 finals_title: str | None = None) -> list[Path]:
    """One row of panels per metric: versus training step, cumulative FLOPs (log) and parameters (log).

    frame: tidy (run, step) table. Colour hue = scaling axis (width blues, deeper Pairformer oranges, deeper
    structure module greens), marker = axis on the parameters panel. ``fits`` (keyed by metric) are computed
    when not given; ``budgets`` (FLOPs, keyed by metric) are drawn as the matched-compute line. Metrics nobody
    logged are skipped. Returns the written PNG and SVG paths.
    """
    metrics = tuple(m for m in metrics if m in frame and frame[m].notna().any())
    if not metrics:
        raise ReportInputError("scaling plot: none of the requested metrics was logged by any run")
    fits = dict(fits or {})
    configs = per_config(frame)
    colours, labels = config_colours(configs), config_labels(configs)
    rescued_runs = set(frame.loc[rescued(frame), "run"])
    order = configs.sort_values(["axis", "params", "config"], ascending=[False, True, True])["config"]
    fig, axes = new_figure(len(metrics), 3, width=5.0, height=4.0)
    for row, metric in enumerate(metrics):
        fit = (fits.get(metric) or scaling_fits(frame, metric, n_bootstrap=n_bootstrap)) if draw_laws else None
        fits[metric] = fit
        ax_step, ax_flops, ax_params = axes[row]
        logged = frame.dropna(subset=[metric])
        curves = curves_by_config(frame, metric)
        for config in order:
            colour = colours[config]
            for run, seed_curve in logged[logged["config"] == config].groupby("run"):
                dashed = "--" if run in rescued_runs else "-"
                ax_step.plot(seed_curve["step"], seed_curve[metric], color=colour, lw=0.7, alpha=0.35, ls=dashed)
                spent = seed_curve[seed_curve["flops"] > 0]
                ax_flops.plot(spent["flops"], spent[metric], color=colour, lw=0.7, alpha=0.35, ls=dashed,
                              marker=".", ms=3)
            mean = _feasible(curves[curves["config"] == config], metric)
            style = dict(color=colour, lw=1.9, label=labels[config])
            ax_step.plot(mean["step"], mean["mean"], **style)
            ax_step.fill_between(mean["step"], mean["low"], mean["high"], color=colour, alpha=0.12, lw=0)
            spent = mean[mean["flops"] > 0]
            ax_flops.plot(spent["flops"], spent["mean"], **style)
            ax_flops.fill_between(spent["flops"], spent["low"], spent["high"], color=colour, alpha=0.12, lw=0)
        if budgets and metric in budgets:
            ax_flops.axvline(budgets[metric], color="black", lw=1.0, ls=":", label="matched-compute budget")
        _draw_finals(ax_params, frame, metric, configs, colours)
        notes = []
        if fit is not None:
            _draw_frontier(ax_flops, fit, metric)
            drawn = _draw_fit(ax_flops, fit.compute, metric, fit.frontier["x"], "L(C) fit on the frontier")
            if drawn is None:
                notes.append((ax_flops, f"{LAW_C} not fitted: {fit.refused.get(LAW_C, 'no frontier')}"))
            finals_x = frame.dropna(subset=[metric])["params"]
            if _draw_fit(ax_params, fit.params, metric, finals_x, "L(N) fit (converged runs)") is None:
                notes.append((ax_params, f"{LAW_N} not fitted: {fit.refused.get(LAW_N, '')}"))
            if not _draw_backtest(ax_params, fit, metric):
                notes.append((ax_params, f"backtest not run: {fit.refused.get(LAW_BACKTEST, '')}"))
        for ax in axes[row]:
            _draw_references(ax, frame, metric)
        ax_step.set_xlabel(axis_label("step"))
        for ax, key in ((ax_flops, "flops"), (ax_params, "params")):
            # Under the axis label, where constrained layout makes room and no data hides it.
            refusals = [textwrap.fill(text, 62) for a, text in notes if a is ax]
            ax.set_xlabel("\n".join([axis_label(key), *refusals]), fontsize=9 if refusals else None)
        for ax in (ax_flops, ax_params):
            ax.set_xscale("log")
            _thin_log_labels(ax.xaxis)
        if "loss" in metric or "_ce" in metric:
            for ax in axes[row]:
                ax.set_yscale("log")
                _thin_log_labels(ax.yaxis)
        for ax in axes[row]:
            ax.set_ylabel(axis_label(metric))
            shown = [logged[metric].to_numpy(float), [r.estimate.mean for r in references(frame, metric)]]
            _limit_to_points(ax, np.concatenate(shown), ax.get_yscale() == "log")
        ax_step.set_title(f"{axis_label(metric)} vs step")
        ax_flops.set_title(f"{axis_label(metric)} vs compute")
        ax_params.set_title(finals_title or f"final {axis_label(metric)} vs size (each run's last step)",
                            fontsize=9)
        extra = [h for h in ax_flops.get_legend_handles_labels()[0]
                 if not str(h.get_label()).startswith(tuple(labels.values()))]
        if extra:  # legends beside the panels, never over the data
            ax_flops.legend(handles=extra, loc="upper left", bbox_to_anchor=(0.0, -0.22), fontsize=7, frameon=False)
        ax_params.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    axes[0][0].legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), title="configuration (mean, interval; "
                      "seeds faint)", fontsize=7, title_fontsize=8, frameon=False)
    return save(fig, out_dir, stem)


def _feasible(curve: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Interval bands clipped to what the metric can be: a score lies in [0, 1], a loss is positive. (Two seeds
    give a t-interval 12.7 standard errors wide, which would otherwise reach negative lDDT.)"""
    if to_error(metric, np.zeros(1))[1] != metric:
        return curve.assign(low=curve["low"].clip(0, 1), high=curve["high"].clip(0, 1))
    return curve.assign(low=curve["low"].clip(lower=curve["mean"].min() * 1e-3))


def _limit_to_points(ax: Axes, values: np.ndarray, log: bool) -> None:
    """Y range from the logged points and reference lines (``values``), so wide interval bands run off the
    panel instead of squeezing every curve into a line; the bands' true extent is in the tables."""
    values = values[np.isfinite(values) & ((values > 0) if log else True)]
    if not len(values):
        return
    low, high = values.min(), values.max()
    if log:
        ax.set_ylim(low / 1.3, high * 1.3)
    else:
        pad = 0.08 * (high - low or abs(high) or 1.0)
        ax.set_ylim(low - pad, high + pad)


def _draw_frontier(ax: Axes, fit: ScalingFits, metric: str) -> None:
    """The compute-efficient frontier of the seed-averaged curves, in the metric's own units."""
    front = fit.frontier
    if front.empty:
        return
    y = front["y"].to_numpy()
    if to_error(metric, np.zeros(1))[1] != metric:
        y = 1 - y
    ax.plot(front["x"], y, color="black", lw=1.3, alpha=0.8, marker="o", ms=4, zorder=4,
            label="compute frontier (seed means)")


def _draw_finals(ax: Axes, frame: pd.DataFrame, metric: str, configs: pd.DataFrame, colours: dict) -> None:
    """Each configuration's final value (mean over seeds) with its interval as an error bar."""
    finals = final_by_config(frame, metric)
    seen_axes: set[str] = set()
    for c in configs.itertuples(index=False):
        if c.config not in finals:
            continue
        e = finals[c.config]
        yerr = None if np.isnan(e.low) else [[e.mean - e.low], [e.high - e.mean]]
        ax.errorbar([c.params], [e.mean], yerr=yerr, fmt=AXIS_MARKERS.get(c.axis, "o"), ms=8, capsize=3,
                    color=colours[c.config], mec="black", zorder=3,
                    label=c.axis if c.axis not in seen_axes else None)
        seen_axes.add(c.axis)


def _draw_references(ax: Axes, frame: pd.DataFrame, metric: str) -> None:
    for ref in references(frame, metric):
        ls = REFERENCE_STYLES.get(ref.label, "--")
        e = ref.estimate
        interval = f" [{e.low:.3g}, {e.high:.3g}]" if e.high > e.low else ""
        ax.axhline(e.mean, color="grey", ls=ls, lw=1.2, label=f"{ref.label}: {e.mean:.3g}{interval}")


def _draw_backtest(ax: Axes, fit: ScalingFits, metric: str) -> bool:
    """The extrapolation backtest: the held-out largest configuration's prediction (interval) and observation."""
    e = fit.extrapolation
    if e is None:
        return False
    pred, low, high, obs = e.predicted, e.predicted_low, e.predicted_high, e.observed
    if to_error(metric, np.zeros(1))[1] != metric:
        pred, low, high, obs = 1 - pred, 1 - high, 1 - low, 1 - obs
    ax.errorbar([e.held_out_x * 1.04], [pred], yerr=[[pred - low], [high - pred]], fmt="D", color="crimson",
                capsize=4, ms=7, zorder=5, label=f"backtest prediction {pred:.3g} [{low:.3g}, {high:.3g}]")
    ax.scatter([e.held_out_x], [obs], marker="*", s=120, color="crimson", edgecolor="black", zorder=6,
               label=f"held-out observed {obs:.3g}")
    return True


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
