"""What a trivial prediction scores on the same validation set, so that "learning" reads as distance from it.

Two references per metric: the untrained model (each run's validation at step 0, over all runs: it depends
on the initialisation, not on the configuration's capacity) and, for lDDT, the geometric baseline the trainer
logs once (``baseline/lddt_geometric``: a fixed, deterministic prediction scored on the fixed validation set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.seeds import Estimate, estimate, run_noise

GEOMETRIC = "baseline/lddt_geometric"
# Which metrics the geometric baseline is a reference for.
GEOMETRIC_FOR = ("val/lddt",)


@dataclass(frozen=True)
class Reference:
    """A horizontal reference line: ``label``, its ``estimate`` and where it came from (``note``)."""

    label: str
    estimate: Estimate
    note: str

    def text(self) -> str:
        e = self.estimate
        if e.n_seeds > 1 and e.high - e.low == 0:
            return f"{e.mean:.4g} (identical in all {e.n_seeds} runs; {self.note})"
        return f"{e.text()} ({self.note})"


def untrained(frame: pd.DataFrame, metric: str) -> Reference | None:
    """``metric`` of the untrained model: every run's step-0 validation, pooled (None when no run validated
    at step 0). frame: tidy (run, step) table."""
    if metric not in frame:
        return None
    first = frame[frame["step"] == 0].dropna(subset=[metric])
    if first.empty:
        return None
    noise = run_noise(frame, metric).reindex(first["run"]).to_numpy()
    return Reference("untrained (step 0)", estimate(first[metric].to_numpy(), noise),
                     f"step-0 validation of {len(first)} runs")


def geometric(frame: pd.DataFrame, metric: str) -> Reference | None:
    """The logged geometric baseline for ``metric`` (lDDT only), from each run's record; None if absent."""
    if metric not in GEOMETRIC_FOR or GEOMETRIC not in frame:
        return None
    values = frame.dropna(subset=[GEOMETRIC]).groupby("run")[GEOMETRIC].last()
    if values.empty:
        return None
    spread = float(np.ptp(values.to_numpy()))
    est = estimate(values.to_numpy())
    if spread == 0:  # deterministic on a shared validation set: the value is exact, not a draw
        est = Estimate(est.mean, est.mean, est.mean, 0.0, math.inf, len(values), math.nan)
    return Reference("geometric baseline", est, "deterministic prediction on the same validation set")


def references(frame: pd.DataFrame, metric: str) -> list[Reference]:
    """Every reference available for ``metric``."""
    return [r for r in (untrained(frame, metric), geometric(frame, metric)) if r is not None]
