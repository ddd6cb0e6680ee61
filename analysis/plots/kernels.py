"""Kernel benchmarks (the paper's Figure 3b): time and memory of triangle attention versus sequence length.

Input: one or more CSV files with one row per measurement and the columns ``variant`` (vanilla / additive /
gated), ``n_tokens``, ``ms`` (milliseconds per call), optionally ``impl`` (torch / triton / ...), ``pass``
(forward / fwd+bwd) and a memory column: ``peak_mb`` (peak allocated MB) or ``activation_mb`` (MB saved for
backward).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analysis.collect import ReportInputError
from analysis.plots.style import ATTENTION_COLOURS, new_figure, save, styled

REQUIRED = ("variant", "n_tokens", "ms")
MEMORY_COLUMNS = {"peak_mb": "peak memory (MB)", "activation_mb": "activations saved for backward (MB)"}
IMPL_STYLES = {"torch": "-", "triton": "--", "compile": ":"}


def read_kernel_benchmarks(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate benchmark CSVs, checking columns; ``impl`` / ``pass`` default to ``torch`` / ``""``."""
    frames = []
    for path in map(Path, paths):
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ReportInputError(f"{path}: cannot read benchmark CSV ({exc})") from None
        missing = [c for c in REQUIRED if c not in frame]
        if missing:
            raise ReportInputError(f"{path}: missing columns {missing}; expected {list(REQUIRED)} "
                                   f"and optionally impl, pass, {', '.join(MEMORY_COLUMNS)}")
        for column in ("n_tokens", "ms", *MEMORY_COLUMNS):
            if column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
                raise ReportInputError(f"{path}: column {column!r} must be numeric")
        frames.append(frame.assign(impl=frame.get("impl", "torch"), **{"pass": frame.get("pass", "")}))
    if not frames:
        raise ReportInputError("kernels plot: no benchmark CSV given")
    return pd.concat(frames, ignore_index=True)


@styled
def plot_kernels(bench: pd.DataFrame, out_dir: str | Path, stem: str = "kernels") -> list[Path]:
    """Time per call and memory versus n_tokens (log-log), one line per (variant, impl, pass).

    bench: from :func:`read_kernel_benchmarks`. The memory panel appears when a memory column is present.
    """
    memory = next((c for c in MEMORY_COLUMNS if c in bench and bench[c].notna().any()), None)
    fig, axes = new_figure(1, 2 if memory else 1, width=5.2)
    panels = [("ms", "time per call (ms)")] + ([(memory, MEMORY_COLUMNS[memory])] if memory else [])
    for ax, (column, ylabel) in zip(axes[0], panels, strict=True):
        for (variant, impl, pass_), group in bench.groupby(["variant", "impl", "pass"], sort=True):
            group = group.dropna(subset=[column]).sort_values("n_tokens")
            label = " ".join(str(p) for p in (variant, impl, pass_) if p)
            ax.plot(group["n_tokens"], group[column], marker="o", lw=1.8, ls=IMPL_STYLES.get(impl, "-."),
                    color=ATTENTION_COLOURS.get(variant, "grey"), label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n_tokens")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.split(" (")[0])
        ax.legend(loc="best")
    return save(fig, out_dir, stem)
