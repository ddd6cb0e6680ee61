"""Choosing a configuration's learning rate from a scan (the study's lr, chosen by evidence).

Each scanned rate trains the configuration to the scan budget (a complete warmup–stable–decay schedule) and
gives a final ``val/loss``. The loss against log10(lr) is fitted with a parabola and the rate at its minimum is
chosen, rounded to two significant digits. When the parabola has no minimum inside the scanned range, the best
scanned rate is chosen and the note says why, so the report can say "widen the scan" instead of pretending.
Diverged rates (non-finite loss) are left out of the fit and named.

    choice = choose_lr([5e-4, 1e-3, 2e-3, 4e-3], [4.1, 3.9, 3.85, 4.2])
    choice.lr, choice.note
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LrChoice:
    """The chosen rate, how it was found (``note``), and the fitted parabola ``coef`` (a, b, c of
    a·x² + b·x + c in x = log10 lr; None when not fitted). ``at_edge``: the choice, or the lowest measured
    loss, sits on the scan's edge."""

    lr: float
    note: str
    coef: tuple[float, float, float] | None
    at_edge: bool
    diverged: tuple[float, ...] = ()

    def predict(self, lr: np.ndarray) -> np.ndarray:
        """The fitted parabola's loss at ``lr`` (NaN without a fit)."""
        x = np.log10(np.asarray(lr, dtype=float))
        if self.coef is None:
            return np.full_like(x, np.nan)
        a, b, c = self.coef
        return a * x**2 + b * x + c


def round_lr(lr: float) -> float:
    """Two significant digits: the scan's resolution, and a stable run key for the same choice."""
    return float(f"{lr:.2g}")


def choose_lr(lrs: list[float] | np.ndarray, losses: list[float] | np.ndarray) -> LrChoice:
    """Choose from scanned rates ``lrs`` and their final losses (mean over the scan's seeds)."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    order = np.argsort(lrs)
    lrs, losses = lrs[order], losses[order]
    finite = np.isfinite(losses)
    diverged = tuple(float(v) for v in lrs[~finite])
    lrs, losses = lrs[finite], losses[finite]
    if len(lrs) == 0:
        raise ValueError("every scanned learning rate diverged: nothing to choose from")
    best = int(np.argmin(losses))
    edge = best in (0, len(lrs) - 1)
    if len(lrs) < 3:
        return LrChoice(round_lr(lrs[best]), f"best of {len(lrs)} finite scan points (too few for a parabola)",
                        None, edge, diverged)
    x = np.log10(lrs)
    a, b, c = np.polyfit(x, losses, 2)
    coef = (float(a), float(b), float(c))
    if a <= 0:
        return LrChoice(round_lr(lrs[best]), "the scan's best rate (the loss is not convex in log lr here)",
                        coef, edge, diverged)
    vertex = -b / (2 * a)
    if not x[0] <= vertex <= x[-1]:
        side = "below" if vertex < x[0] else "above"
        return LrChoice(round_lr(lrs[best]), f"the scan's best rate: the parabola's minimum lies {side} the scanned "
                        "range (widen the scan)", coef, True, diverged)
    note = f"minimum of a parabola in log lr through {len(lrs)} scan points"
    if edge:
        side = "lowest" if best == 0 else "highest"
        note += (f"; the lowest measured loss is at the {side} rate scanned, so no measured point brackets the "
                 "minimum on that side (widen the scan to confirm)")
    return LrChoice(round_lr(10**vertex), note, coef, edge, diverged)


def describe(choice: LrChoice) -> str:
    text = f"{choice.lr:.2g} ({choice.note})"
    if choice.diverged:
        text += "; diverged: " + ", ".join(f"{v:.2g}" for v in choice.diverged)
    return text if math.isfinite(choice.lr) else "n/a"
