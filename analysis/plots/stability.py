"""Training stability: gradient norm and loss per step, with and without the lr/warmup fix (docs/DESIGN.md §2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.collect import ReportInputError
from analysis.plots.style import axis_label, new_figure, per_run, save, styled

GRAD_NORM, LOSS = "train/grad_norm", "train/loss"


def spike_step(curve: pd.DataFrame, factor: float = 10.0, window: int = 5) -> float | None:
    """First step whose gradient norm exceeds ``factor`` × the median of the ``window`` logged values before
    it; None when the run never spikes. curve: one run's rows with ``step`` and ``train/grad_norm``."""
    g = curve.dropna(subset=[GRAD_NORM])
    values, steps = g[GRAD_NORM].to_numpy(), g["step"].to_numpy()
    for i in range(window, len(values)):
        if values[i] > factor * np.median(values[i - window:i]):
            return float(steps[i])
    return None


@styled
def plot_stability(frame: pd.DataFrame, out_dir: str | Path, stem: str = "stability") -> list[Path]:
    """Gradient norm (log) and training loss (log) versus step, one line per run labelled by lr and warmup;
    a dotted vertical line marks each run's first gradient-norm spike (see :func:`spike_step`)."""
    for key in (GRAD_NORM, LOSS):
        if key not in frame or frame[key].isna().all():
            raise ReportInputError(f"stability plot: no run logged {key!r}")
    runs = per_run(frame)
    colours = dict(zip(runs["run"], [f"C{i}" for i in range(len(runs))], strict=True))
    fig, axes = new_figure(1, 2, width=5.4)
    ax_g, ax_l = axes[0]
    for run, curve in frame.groupby("run", sort=False):
        first = curve.iloc[0]
        label = f"{first['name']}: lr={first['lr']:.3g}, warmup={first['warmup']:.0f}"
        for ax, key in ((ax_g, GRAD_NORM), (ax_l, LOSS)):
            c = curve.dropna(subset=[key])
            ax.plot(c["step"], c[key], color=colours[run], lw=1.6, label=label)
        spike = spike_step(curve)
        if spike is not None:
            for ax in (ax_g, ax_l):
                ax.axvline(spike, color=colours[run], ls=":", lw=1.2)
    for ax, key in ((ax_g, GRAD_NORM), (ax_l, LOSS)):
        ax.set_yscale("log")
        ax.set_xlabel(axis_label("step"))
        ax.set_ylabel(axis_label(key))
        ax.set_title(axis_label(key))
    ax_g.legend(loc="best")
    return save(fig, out_dir, stem)
