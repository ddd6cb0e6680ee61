"""The laws part of a report, computed once from a completed-runs table: tables (as rows), sentences and figures
for ``analysis.report`` to lay out.

    section = laws_section(table, out_dir="reports/study")   # figures written into out_dir
    section.law_rows(); section.optima_rows(); section.ladder_rows(); section.lines()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.advice import Allocation, BudgetOptimum, allocation, allocation_from_law, budget_optima
from analysis.cells import Cells, cells_of
from analysis.ladder import Ladder, loss_to_metric
from analysis.study_laws import LAW_ND, LAWS, StudyLaw, study_law, target_cells

STRUCTURE_METRICS = ("val/lddt", "val/contact_precision")


@dataclass
class LawsSection:
    """Laws of the primary ``metric``, the per-budget optima and allocation rules, the loss → structure
    mappings, and the written figures (name → PNG and SVG paths)."""

    metric: str
    cells: Cells
    laws: dict[str, StudyLaw]
    optima: list[BudgetOptimum]
    allocations: tuple[Allocation, ...]
    ladders: dict[str, Ladder]
    figures: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return next(iter(self.laws.values())).target

    def law_rows(self) -> pd.DataFrame:
        """One row per law: form, fitted target, points, coefficients with intervals or ``not fitted: <reason>``,
        and each backtest's error with its interval next to it."""
        rows = []
        for law in self.laws.values():
            backtests = {b.holdout: b.text() for b in law.backtests}
            rows.append({"law": law.form, "fitted": law.target, "points": len(law.points),
                         "result": law.status(), "backtest: largest budget": backtests.get("largest budget", ""),
                         "backtest: largest configuration": backtests.get("largest configuration", ""),
                         "intervals over": law.resampling})
        return pd.DataFrame(rows)

    def optima_rows(self) -> pd.DataFrame:
        """One row per FLOPs budget: the best configuration, its value, how often it is best, the runner-up gap."""
        return pd.DataFrame([{
            "FLOPs budget": f"{o.budget:.3g}", "best": o.best, "parameters": f"{o.params:.3g}",
            "steps": f"{o.steps:.0f}", self.target: f"{o.value:.4g} [{o.low:.4g}, {o.high:.4g}]",
            "best in resamples": f"{100 * o.share.get(o.best, 0):.0f} %", "runner-up": o.runner_up or "",
            "gap to runner-up": "" if o.runner_up is None else f"{o.gap:+.3g} [{o.gap_low:+.3g}, {o.gap_high:+.3g}]",
            "verdict": "" if o.runner_up is None else ("resolved" if o.resolved else "not resolved"),
        } for o in self.optima])

    def ladder_rows(self) -> pd.DataFrame:
        return pd.DataFrame([{"metric": m, "cells": len(ladder.points), "result": ladder.status(),
                              "scatter (link scale)": f"{ladder.residual_sd:.3g}"}
                             for m, ladder in self.ladders.items()])

    def lines(self) -> list[str]:
        """One sentence per law, allocation rule and mapping, for the page's prose."""
        out = []
        for law in self.laws.values():
            text = f"{law.form} ({law.target}, {len(law.points)} points): {law.status()}"
            ran = [b.text() for b in law.backtests if b.applicable and b.problem is None]
            out.append(text + (f"; backtests: {'; '.join(ran)}" if ran and law.presented else "") + ".")
        out += [a.text() + "." for a in self.allocations]
        out += [f"{m} from {ladder.loss}: {ladder.status()}." for m, ladder in self.ladders.items()]
        return out


def laws_section(table: pd.DataFrame, metric: str = "val/loss", *,
                 structure_metrics: tuple[str, ...] = STRUCTURE_METRICS, n_bootstrap: int = 1000, seed: int = 0,
                 structures: pd.DataFrame | None = None, out_dir: str | Path | None = None) -> LawsSection:
    """Everything the laws part of a report shows, from a completed-runs table (``analysis.completed``).

    ``structure_metrics`` without values in the table are skipped. With ``out_dir`` the figures ``isoflops``,
    ``laws`` and (when a mapping was attempted) ``ladder`` are written there.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        cells = target_cells(cells_of(table, metric, n_bootstrap=n_bootstrap, seed=seed, structures=structures))
        laws = {name: study_law(name, cells) for name in LAWS}
        allocations = (allocation(cells), allocation_from_law(laws[LAW_ND], cells))
        ladders = {m: loss_to_metric(table, m, metric, n_bootstrap=n_bootstrap, seed=seed)
                   for m in structure_metrics if m in table and table[m].notna().any()}
    section = LawsSection(metric, cells, laws, budget_optima(cells), allocations, ladders)
    if out_dir is not None:
        from analysis.plots.laws import plot_isoflops, plot_ladder, plot_laws

        section.figures["isoflops"] = plot_isoflops(cells, allocations[0], out_dir)
        section.figures["laws"] = plot_laws(laws, out_dir)
        if ladders:
            section.figures["ladder"] = plot_ladder(ladders, out_dir)
    return section
