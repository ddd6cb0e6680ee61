"""Shared look of every figure: fonts, one colour per configuration, axis labels with units, saving."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis.collect import AXIS_PAIRFORMER, AXIS_STRUCTURE, AXIS_WIDTH, rescued  # noqa: E402

P = ParamSpec("P")
R = TypeVar("R")

RC = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "savefig.dpi": 150, "svg.fonttype": "none",
}
# Width axis in blues (darker = wider), the two depth axes in their own hues, as in the paper's Figure 2.
AXIS_CMAPS = {AXIS_WIDTH: "Blues", AXIS_PAIRFORMER: "Oranges", AXIS_STRUCTURE: "Greens"}
AXIS_MARKERS = {AXIS_WIDTH: "o", AXIS_PAIRFORMER: "s", AXIS_STRUCTURE: "^"}
ATTENTION_COLOURS = {"vanilla": "#1f77b4", "additive": "#d62728", "gated": "#2ca02c"}

LABELS = {
    "step": "training step",
    "flops": "cumulative training FLOPs (fwd + bwd)",
    "params": "parameters",
    "examples": "training examples seen",
    "val/loss_diffusion": "validation diffusion loss (σ quadrature)",
    "val/distogram_ce": "validation distogram cross-entropy",
    "val/smooth_lddt": "validation smooth lDDT (σ quadrature)",
    "val/lddt": "validation lDDT (sampled structures)",
    "val/contact_precision": "contact precision, top-L/5, sep ≥ 24 (distogram)",
    "val/loss": "validation loss (4 x diffusion + 0.03 x distogram)",
    "train/loss": "training loss",
    "train/grad_norm": "gradient norm (before clipping)",
    "train/lr": "learning rate",
}


def axis_label(key: str) -> str:
    return LABELS.get(key, key)


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """A short unique label per run: its name, with the run key appended where names repeat."""
    names = runs.set_index("run")["name"].astype(str)
    counts = names.value_counts()
    return {run: (n if counts[n] == 1 else f"{n} ({run[:6]})") for run, n in names.items()}


def run_colours(runs: pd.DataFrame) -> dict[str, tuple]:
    """One colour per run, stable across every figure of a report: a hue per scaling axis, shaded by size."""
    colours: dict[str, tuple] = {}
    for axis, group in runs.groupby("axis"):
        cmap = plt.get_cmap(AXIS_CMAPS.get(axis, "Greys"))
        group = group.sort_values(["params", "width", "run"])
        shades = np.linspace(0.45, 0.95, len(group)) if len(group) > 1 else [0.75]
        colours.update({run: cmap(s) for run, s in zip(group["run"], shades, strict=True)})
    return colours


def styled(plot: Callable[P, R]) -> Callable[P, R]:
    """Run a plotting function under the report's rc settings (fonts, grid), leaving global state alone."""

    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with plt.rc_context(RC):
            return plot(*args, **kwargs)

    return wrapper


def new_figure(n_rows: int, n_cols: int, width: float = 4.6,
               height: float = 3.6) -> tuple[Figure, np.ndarray]:
    """A figure of n_rows × n_cols panels; call inside a :func:`styled` function."""
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows), squeeze=False,
                             constrained_layout=True)
    return fig, axes


def save(fig: Figure, out_dir: str | Path, stem: str,
         formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``<out_dir>/<stem>.<fmt>`` for each format and close the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def per_run(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run of a tidy frame (identity columns only matter)."""
    return frame.drop_duplicates("run").reset_index(drop=True)


GUARD_MARK = "†"  # appended to the label of a configuration with a guard-rescued run


def per_config(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of a tidy frame: ``config``, ``axis``, ``params``, ``width``, ``attention``,
    ``n_seeds`` and ``n_rescued`` (runs the stability guard rescued)."""
    runs = per_run(frame)
    runs = runs.assign(_rescued=rescued(runs))
    table = runs.groupby("config", sort=False).agg(
        scaling_axis=("axis", "first"), params=("params", "first"), width=("width", "first"),
        attention=("attention", "first"), n_seeds=("run", "size"), n_rescued=("_rescued", "sum"))
    return table.reset_index().rename(columns={"scaling_axis": "axis"})


def config_labels(configs: pd.DataFrame) -> dict[str, str]:
    """``medium (3 seeds)``, with ``† 1 guard-rescued`` when the guard rescued some of its runs."""
    labels = {}
    for c in configs.itertuples(index=False):
        label = f"{c.config} ({c.n_seeds} seed{'s' if c.n_seeds != 1 else ''})"
        if c.n_rescued:
            label += f" {GUARD_MARK} {c.n_rescued} guard-rescued"
        labels[c.config] = label
    return labels


def config_colours(configs: pd.DataFrame) -> dict[str, tuple]:
    """One colour per configuration, as :func:`run_colours` gives one per run."""
    return run_colours(configs.rename(columns={"config": "run"}))
