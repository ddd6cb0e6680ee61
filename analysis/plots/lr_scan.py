"""The learning-rate scan: each configuration's final val/loss at the scan budget against lr (log), with the
estimator's interval and the spread of the scan's seeds, the fitted parabola and the chosen rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.lr_scan import choose_lr
from analysis.plots.differences import COLOURS
from analysis.plots.style import new_figure, save, styled


def scan_points(completed: pd.DataFrame, metric: str = "val/loss") -> pd.DataFrame:
    """Per (configuration, lr): the scan runs' mean final ``metric``, its interval half-width (the larger of the
    seeds' standard error and the estimator noise, times 1.96) and how many seeds."""
    scan = completed[completed["scan"]].drop_duplicates("run")
    rows = []
    for (config, lr), runs in scan.groupby(["config", "lr"]):
        values = runs[metric].to_numpy(float)
        noise = runs.get(f"{metric}_noise", pd.Series(np.nan, index=runs.index)).to_numpy(float)
        se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        half = 1.96 * max(se, float(np.nanmean(noise)) if np.isfinite(noise).any() else 0.0)
        rows.append({"config": config, "lr": float(lr), "value": float(values.mean()), "half": half,
                     "n_seeds": len(values)})
    return pd.DataFrame(rows, columns=["config", "lr", "value", "half", "n_seeds"])


def scan_table(points: pd.DataFrame, metric: str = "val/loss") -> pd.DataFrame:
    """Per configuration: each scanned lr's value ± half-width, and the chosen lr with how it was chosen."""
    rows = []
    for config, p in points.groupby("config", sort=False):
        choice = choose_lr(p["lr"].to_numpy(), p["value"].to_numpy())
        row = {"configuration": config}
        row |= {f"lr {lr:.2g}": f"{v:.4g} ± {h:.2g}" for lr, v, h in zip(p["lr"], p["value"], p["half"], strict=True)}
        row |= {"chosen lr": f"{choice.lr:.2g}", "how": choice.note}
        rows.append(row)
    return pd.DataFrame(rows).astype(object).fillna("")


@styled
def plot_lr_scan(points: pd.DataFrame, out_dir: str | Path, metric: str = "val/loss",
                 stem: str = "lr_scan") -> list[Path]:
    fig, axes = new_figure(1, 1, width=6.0, height=4.0)
    ax = axes[0, 0]
    for config, p in points.groupby("config", sort=False):
        colour = COLOURS.get(str(config), "#555555")
        ax.errorbar(p["lr"], p["value"], yerr=p["half"], fmt="o", color=colour, capsize=3, label=str(config))
        choice = choose_lr(p["lr"].to_numpy(), p["value"].to_numpy())
        if choice.coef is not None:
            grid = np.geomspace(p["lr"].min(), p["lr"].max(), 60)
            ax.plot(grid, choice.predict(grid), color=colour, lw=0.9, alpha=0.7)
        ax.axvline(choice.lr, color=colour, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (peak of the warmup-stable-decay schedule)")
    ax.set_ylabel(f"final {metric} at the scan budget\n(lower is better; dotted: chosen lr)", fontsize=8)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    return save(fig, out_dir, stem)
