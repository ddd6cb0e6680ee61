"""Attention variants (the paper's Figure 5): vanilla / additive / gated curves per validation metric."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.collect import ReportInputError
from analysis.plots.style import ATTENTION_COLOURS, axis_label, new_figure, per_run, run_labels, save, styled


@styled
def plot_attention(frame: pd.DataFrame, out_dir: str | Path, stem: str = "attention",
                   extra: tuple[str, ...] = ("train/loss",)) -> list[Path]:
    """One panel per validation metric (``val/*``; per-task metrics such as ``val/lddt/protein_dna`` get their
    own panel) plus ``extra`` metrics, versus step; one line per run coloured by its attention variant.

    frame: tidy (run, step) table of a sweep whose runs differ in ``attention``. Returns PNG and SVG paths.
    """
    runs = per_run(frame)
    if runs["attention"].replace("", pd.NA).dropna().nunique() < 2:
        raise ReportInputError("attention plot: the runs use fewer than two attention variants "
                               f"(found {sorted(set(runs['attention']))})")
    metrics = [c for c in frame.columns if c.startswith("val/") and frame[c].notna().any()]
    metrics += [m for m in extra if m in frame and frame[m].notna().any()]
    if not metrics:
        raise ReportInputError("attention plot: no validation metric was logged")
    labels = run_labels(runs)
    n_cols = min(3, len(metrics))
    n_rows = -(-len(metrics) // n_cols)
    fig, axes = new_figure(n_rows, n_cols)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for run, curve in frame.dropna(subset=[metric]).groupby("run", sort=False):
            attention = curve["attention"].iloc[0]
            ax.plot(curve["step"], curve[metric], color=ATTENTION_COLOURS.get(attention, "grey"), lw=1.8,
                    label=f"{attention}: {labels[run]}")
        ax.set_xlabel(axis_label("step"))
        ax.set_ylabel(axis_label(metric))
        ax.set_title(axis_label(metric))
        if "loss" in metric:
            ax.set_yscale("log")
        ax.legend(loc="best")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    return save(fig, out_dir, stem)
