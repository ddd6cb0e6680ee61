"""The diffusion loss resolved over the validation σ grid: where in noise level each configuration learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.collect import ReportInputError
from analysis.coverage import sigma_columns
from analysis.plots.style import config_colours, config_labels, new_figure, per_config, save, styled
from analysis.seeds import final_by_config, step0_by_config


def sigma_grid(frame: pd.DataFrame, n_nodes: int) -> tuple[np.ndarray, str]:
    """The σ nodes (Å) recorded in the runs' ``val_sigma_grid`` param, else the node index; with the x label.

    Raises ReportInputError when runs recorded different grids or a grid whose length is not ``n_nodes``."""
    grids = {g for g in frame.drop_duplicates("run").get("val_sigmas", pd.Series(dtype=str)) if g}
    if not grids:
        return np.arange(n_nodes, dtype=float), "σ node index (grid not recorded)"
    if len(grids) > 1:
        raise ReportInputError(f"sigma plot: the runs recorded {len(grids)} different σ grids: {sorted(grids)}")
    raw = next(iter(grids))
    try:
        grid = np.asarray(json.loads(raw), dtype=float)
    except (json.JSONDecodeError, TypeError, ValueError):
        raise ReportInputError(f"param val_sigma_grid={raw!r}: expected a JSON list of numbers") from None
    if grid.shape != (n_nodes,):
        raise ReportInputError(f"param val_sigma_grid has {grid.size} nodes but {n_nodes} per-σ metrics were logged")
    return grid, "noise level σ (Å)"


@styled
def plot_sigma(frame: pd.DataFrame, out_dir: str | Path, stem: str = "sigma") -> list[Path]:
    """Final per-σ diffusion loss per configuration (mean over seeds, interval bars) against σ, with the
    untrained (step-0) profile dotted. frame: tidy (run, step) table with ``val/loss_diffusion_sigma_NN``."""
    columns = sigma_columns(frame)
    if not columns:
        raise ReportInputError("sigma plot: no run logged the per-σ diffusion loss (val/loss_diffusion_sigma_NN)")
    sigmas, xlabel = sigma_grid(frame, len(columns))
    configs = per_config(frame)
    colours, labels = config_colours(configs), config_labels(configs)
    fig, axes = new_figure(1, 1, width=6.4, height=4.4)
    ax = axes[0][0]
    for config in configs["config"]:
        finals = [final_by_config(frame, c).get(config) for c in columns]
        start = [step0_by_config(frame, c).get(config) for c in columns]
        keep = [i for i, e in enumerate(finals) if e is not None]
        mean = np.array([finals[i].mean for i in keep])
        low = np.array([finals[i].low for i in keep])
        high = np.array([finals[i].high for i in keep])
        yerr = None if np.isnan(low).all() else np.vstack([mean - low, high - mean])
        ax.errorbar(sigmas[keep], mean, yerr=yerr, color=colours[config], marker="o", ms=4, capsize=2,
                    lw=1.6, label=labels[config])
        begun = [i for i, e in enumerate(start) if e is not None]
        if begun:
            ax.plot(sigmas[begun], [start[i].mean for i in begun], color=colours[config], ls=":", lw=1.0)
    if xlabel.startswith("noise"):
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation diffusion loss at σ")
    ax.set_title("final diffusion loss per σ node (dotted: step 0)")
    ax.legend(loc="best", fontsize=8)
    return save(fig, out_dir, stem)
