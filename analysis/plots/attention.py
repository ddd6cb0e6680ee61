"""Attention variants (the paper's Figure 5): vanilla / additive / gated curves per validation metric."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.collect import ReportInputError, rescued
from analysis.coverage import sigma_columns
from analysis.plots.style import (
    ATTENTION_COLOURS,
    axis_label,
    config_labels,
    new_figure,
    per_config,
    per_run,
    save,
    styled,
)
from analysis.seeds import curves_by_config


@styled
def plot_attention(frame: pd.DataFrame, out_dir: str | Path, stem: str = "attention",
                   extra: tuple[str, ...] = ("train/loss",)) -> list[Path]:
    """One panel per validation metric (``val/*``; per-task metrics such as ``val/lddt/protein_dna`` get their
    own panel) plus ``extra`` metrics, versus step; per configuration the mean over seeds with its interval
    band, each seed faint (dashed when the stability guard rescued it), coloured by attention variant.

    frame: tidy (run, step) table of a sweep whose runs differ in ``attention``. Returns PNG and SVG paths.
    """
    runs = per_run(frame)
    if runs["attention"].replace("", pd.NA).dropna().nunique() < 2:
        raise ReportInputError("attention plot: the runs use fewer than two attention variants "
                               f"(found {sorted(set(runs['attention']))})")
    # The estimator's noise and the per-σ terms are error bars and a profile, not curves of their own.
    metrics = [c for c in frame.columns if c.startswith("val/") and frame[c].notna().any()
               and not c.endswith("_noise") and c not in sigma_columns(frame)]
    metrics += [m for m in extra if m in frame and frame[m].notna().any()]
    if not metrics:
        raise ReportInputError("attention plot: no validation metric was logged")
    labels = config_labels(per_config(frame))
    rescued_runs = set(frame.loc[rescued(frame), "run"])
    n_cols = min(3, len(metrics))
    n_rows = -(-len(metrics) // n_cols)
    fig, axes = new_figure(n_rows, n_cols)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for run, curve in frame.dropna(subset=[metric]).groupby("run", sort=False):  # each seed, faint
            colour = ATTENTION_COLOURS.get(curve["attention"].iloc[0], "grey")
            ax.plot(curve["step"], curve[metric], color=colour, lw=0.7, alpha=0.35,
                    ls="--" if run in rescued_runs else "-")
        curves = curves_by_config(frame, metric)
        for config, mean in curves.groupby("config", sort=False):
            attention = frame.loc[frame["config"] == config, "attention"].iloc[0]
            colour = ATTENTION_COLOURS.get(attention, "grey")
            label = labels[config] if str(config).startswith(attention) else f"{attention}: {labels[config]}"
            ax.plot(mean["step"], mean["mean"], color=colour, lw=1.8, label=label)
            ax.fill_between(mean["step"], mean["low"], mean["high"], color=colour, alpha=0.18, lw=0)
        ax.set_xlabel(axis_label("step"))
        ax.set_ylabel(axis_label(metric))
        ax.set_title(axis_label(metric))
        if "loss" in metric:
            ax.set_yscale("log")
        ax.legend(loc="best")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    return save(fig, out_dir, stem)
