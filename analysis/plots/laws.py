"""Figures of the laws of a completed-runs study: isoFLOP curves, each law with its backtest, and the loss →
structure-metric mapping.

Every point is a seed-averaged cell (a configuration trained to the end of its schedule at one budget) with its
bootstrap interval. A law or mapping that was refused is not drawn: its panel keeps the points and says
"not fitted: <reason>" under its axis. Legends sit outside the axes, right of the data.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from analysis.advice import Allocation
from analysis.cells import KIND_FLOPS, Cells
from analysis.ladder import Ladder
from analysis.plots.style import axis_label, new_figure, save, styled
from analysis.study_laws import HOLDOUT_BUDGET, LAW_C, LAW_N, LAW_ND, StudyLaw

# What the primary loss is (the training loss's weighting, AF3's: models.losses.AF3_WEIGHTS).
LOSS_LABELS = {"val/loss": "validation loss\n= 4·diffusion + 0.03·distogram CE"}
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "fontsize": 7.5, "borderaxespad": 0.0}


def metric_label(metric: str) -> str:
    """Axis label naming what the metric is (``1 − x`` for a score's error)."""
    if metric.startswith("1 − "):
        return f"1 − {metric_label(metric[4:])}"
    return LOSS_LABELS.get(metric, axis_label(metric))


def _refusal(ax: Axes, xlabel: str, text: str | None) -> None:
    """The x label, with the refusal under it (where constrained layout makes room and no data hides it)."""
    lines = [xlabel] + ([textwrap.fill(f"not fitted: {text}", 70)] if text else [])
    ax.set_xlabel("\n".join(lines), fontsize=9 if text else None)


def _errorbar(ax: Axes, x: np.ndarray, points, colour, label: str | None, marker: str = "o") -> None:
    y, low, high = (points[k].to_numpy(float) for k in ("value", "low", "high"))
    ax.errorbar(x, y, yerr=[y - low, high - y], fmt=marker, ms=5, capsize=2.5, color=colour, mec="black",
                mew=0.5, label=label, zorder=3)


@styled
def plot_isoflops(cells: Cells, allocation: Allocation | None, out_dir: str | Path, stem: str = "isoflops"
                  ) -> list[Path]:
    """Target (loss, or 1 − score) versus parameters, one curve per FLOPs budget, with the isoFLOP parabola
    and its vertex (N_opt with its interval) where the allocation rule was fitted. ``cells`` on the target scale."""
    fig, axes = new_figure(1, 1, width=7.0, height=4.6)
    ax = axes[0][0]
    table = cells.table.assign(low=cells.interval()[0], high=cells.interval()[1])
    flops = table[table["kind"] == KIND_FLOPS]
    ax.set_xscale("log")
    ax.set_ylabel(metric_label(_target(cells)))
    ax.set_title("isoFLOP curves: each run's schedule completed at its budget (matched compute)", fontsize=10)
    if flops.empty:
        _refusal(ax, axis_label("params"), "no FLOPs budgets (every run was trained to a step budget)")
        return save(fig, out_dir, stem)
    budgets = np.unique(flops["budget"])
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(budgets)))
    minima = allocation.minima.set_index("budget") if allocation is not None and len(allocation.minima) else None
    for budget, colour in zip(budgets, colours, strict=True):
        at = flops[flops["budget"] == budget].sort_values("params")
        ax.plot(at["params"], at["value"], color=colour, lw=1.0, alpha=0.7)
        _errorbar(ax, at["params"].to_numpy(), at, colour, f"{budget:.3g} FLOPs")
        if minima is not None and budget in minima.index and np.isfinite(minima.loc[budget, "n_opt"]):
            z = np.log(at["params"].to_numpy())
            coef = np.polyfit(z, at["value"].to_numpy(), 2)
            grid = np.linspace(z.min(), z.max(), 80)
            ax.plot(np.exp(grid), np.polyval(coef, grid), color=colour, lw=0.8, ls="--")
            row = minima.loc[budget]
            y = np.polyval(coef, np.log(row["n_opt"]))
            xerr = [[row["n_opt"] - row["n_opt_low"]], [row["n_opt_high"] - row["n_opt"]]]
            ax.errorbar([row["n_opt"]], [y], xerr=xerr, fmt="*", ms=11, color=colour, mec="black", capsize=3,
                        zorder=4)
    problem = allocation.problem if allocation is not None else "no allocation rule"
    if allocation is not None and problem is None:
        lo, hi = allocation.interval
        ax.plot([], [], "k*", ms=9, label=f"N_opt (parabola vertex); a = {allocation.a:.2f} [{lo:.2f}, {hi:.2f}]")
    _refusal(ax, axis_label("params"), None if problem is None else f"allocation rule: {problem}")
    ax.legend(title="FLOPs budget", title_fontsize=8, **LEGEND)
    return save(fig, out_dir, stem)


def _target(cells: Cells) -> str:
    from analysis.fits import to_error

    return to_error(cells.metric, np.zeros(1))[1]


@styled
def plot_laws(laws: dict[str, StudyLaw], out_dir: str | Path, stem: str = "laws") -> list[Path]:
    """One panel per law: its points with intervals, the law and its bootstrap band where presented, and its
    backtest (the refit without the largest budget or configuration, dashed, and its predictions of the
    held-out points)."""
    names = [n for n in (LAW_C, LAW_N, LAW_ND) if n in laws]
    fig, axes = new_figure(1, len(names), width=5.4, height=4.2)
    for ax, name in zip(axes[0], names, strict=True):
        law = laws[name]
        xlabel = {LAW_C: "FLOPs budget (fwd + bwd)", LAW_N: axis_label("params"), LAW_ND: axis_label("examples")}[name]
        ax.set_xscale("log")
        ax.set_ylabel(metric_label(law.target))
        ax.set_title(f"{law.form}" + (" (matched steps)" if name == LAW_N else " (matched compute)"), fontsize=10)
        if law.points.empty:
            _refusal(ax, xlabel, law.problem)
            continue
        if name == LAW_ND:
            _draw_nd(ax, law)
        else:
            x = law.points["budget" if name == LAW_C else "params"].to_numpy(float)
            _errorbar(ax, x, law.points, "tab:blue", "cells (seed means)")
            if law.presented and law.fit is not None:
                grid = np.geomspace(x.min(), x.max(), 100)
                low, high = law.fit.predict_interval(grid)
                ax.plot(grid, law.fit.predict(grid), color="black", lw=1.2, label=f"{name} fit (band: 95 %)")
                ax.fill_between(grid, low, high, color="black", alpha=0.12, lw=0)
                _draw_backtest(ax, law, x)
        _refusal(ax, xlabel, law.problem)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(**LEGEND)
    return save(fig, out_dir, stem)


def _draw_backtest(ax: Axes, law: StudyLaw, x: np.ndarray) -> None:
    """The first backtest that ran (the largest budget's, else the largest configuration's): its refit and
    its predictions of the held-out points."""
    b = next((b for b in law.backtests if b.refit is not None), None)
    if b is None:
        return
    held = b.points
    hx = held["budget" if law.name == LAW_C else "params"].to_numpy(float)
    grid = np.geomspace(x.min(), hx.max(), 100)
    ax.plot(grid, b.refit.predict(grid), color="crimson", lw=1.0, ls="--", label=f"refit without {b.what}")
    ax.scatter(hx, held["predicted"], marker="D", s=36, color="crimson", zorder=5,
               label=f"backtest: error {100 * b.error:+.2f} % [{100 * b.interval[0]:+.2f}, {100 * b.interval[1]:+.2f}]")


def _draw_nd(ax: Axes, law: StudyLaw) -> None:
    """L(N, D): the target versus examples seen, one colour per configuration, the law at each N."""
    points = law.points
    configs = points.groupby("config")["params"].first().sort_values()
    colours = dict(zip(configs.index, plt.get_cmap("plasma")(np.linspace(0.05, 0.85, len(configs))), strict=True))
    for config, n in configs.items():
        at = points[points["config"] == config].sort_values("examples")
        _errorbar(ax, at["examples"].to_numpy(float), at, colours[config], f"{config} ({n:.3g} params)")
        if law.presented and law.fit is not None:
            grid = np.geomspace(at["examples"].min(), at["examples"].max(), 60)
            ax.plot(grid, law.fit.predict(np.column_stack([np.full_like(grid, n), grid])), color=colours[config],
                    lw=1.0, label=f"{LAW_ND} fit" if config == configs.index[0] else None)
    b = next((b for b in law.backtests if b.holdout == HOLDOUT_BUDGET and b.refit is not None), None)
    if law.presented and b is not None:
        held = points.merge(b.points[["config", "budget", "predicted"]], on=["config", "budget"])
        ax.scatter(held["examples"], held["predicted"], marker="D", s=30, facecolor="none", edgecolor="crimson",
                   zorder=5, label=f"backtest without {b.what}: error {100 * b.error:+.2f} % "
                                   f"[{100 * b.interval[0]:+.2f}, {100 * b.interval[1]:+.2f}]")


@styled
def plot_ladder(ladders: dict[str, Ladder], out_dir: str | Path, stem: str = "ladder") -> list[Path]:
    """Each structure metric against the loss over the cells (both with intervals), with the fitted mapping and
    its band where presented."""
    fig, axes = new_figure(1, max(1, len(ladders)), width=5.2, height=4.2)
    for ax, (metric, ladder) in zip(axes[0], ladders.items(), strict=False):
        p = ladder.points
        ax.errorbar(p["loss"], p["metric"], xerr=[p["loss"] - p["loss_low"], p["loss_high"] - p["loss"]],
                    yerr=[p["metric"] - p["metric_low"], p["metric_high"] - p["metric"]], fmt="o", ms=5, capsize=2,
                    color="tab:green", mec="black", mew=0.5, label="cells (seed means)")
        for row in p.itertuples(index=False):
            ax.annotate(str(row.config), (row.loss, row.metric), xytext=(4, 3), textcoords="offset points", fontsize=7,
                        color="dimgrey")
        if ladder.presented:
            grid = np.linspace(p["loss"].min(), p["loss"].max(), 100)
            inverse = (lambda v: 1 / (1 + np.exp(-v))) if ladder.link == "logit" else (lambda v: v)
            curves = inverse(ladder.samples[:, :1] + ladder.samples[:, 1:2] * grid[None])
            tail = 50.0 * (1 - ladder.confidence)
            ax.plot(grid, inverse(ladder.a + ladder.b * grid), color="black", lw=1.2, label=ladder.form)
            ax.fill_between(grid, *np.percentile(curves, [tail, 100 - tail], axis=0), color="black", alpha=0.12, lw=0)
        ax.set_ylabel(metric_label(metric))
        ax.set_title(f"{axis_label(metric)} against the loss, across runs", fontsize=10)
        _refusal(ax, metric_label(ladder.loss), ladder.problem)
        ax.legend(**LEGEND)
    return save(fig, out_dir, stem)
