"""The study's answer: every family of comparisons (metric × cost axis × budget), the summary tables and the
headline — generated from what is resolved, never written by hand.

    answer = study_answer(frame, "width_vs_depth", structures=structures)
    answer.headline()          # sentences, one per cost axis, each naming budgets and what is resolved
    answer.summary_table(AXIS_FLOPS)   # one row per pair, one column per budget
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.compare import Study, group_column, studies_for
from analysis.inference import ALPHA, Family, all_pairs, compare_family, higher_is_better
from analysis.study import (
    AXES,
    AXIS_FLOPS,
    AXIS_SECONDS,
    AXIS_STEPS,
    PRIMARY_METRIC,
    BudgetPoint,
    budget_points,
    require_study,
)

# Metrics that are the primary metric's own terms: shown, but not counted as findings of their own.
TERMS_OF_PRIMARY = ("val/loss_diffusion", "val/distogram_ce")
GROUP_ORDER = ("base", "medium", "large", "deep_pairformer", "deep_structure", "vanilla", "additive", "gated")


@dataclass
class StudyAnswer:
    """Every family of one study; ``primary`` is the declared primary metric, the rest secondary."""

    study: Study
    primary: str
    families: list[Family] = field(default_factory=list)
    completed: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def of(self, metric: str, axis: str) -> list[Family]:
        return [f for f in self.families if f.metric == metric and f.point.axis == axis]

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(f.metric for f in self.families))

    def axes(self, metric: str | None = None) -> list[str]:
        metric = metric or self.primary
        return [a for a in AXES if self.of(metric, a)]

    def summary_table(self, axis: str, metric: str | None = None) -> pd.DataFrame:
        """One row per pair (``a − b``), one column per budget on ``axis``: the difference with its Welch 95 %
        interval and ✓ when resolved; a last row names the best configuration at each budget."""
        metric = metric or self.primary
        families = self.of(metric, axis)
        pairs = list(dict.fromkeys((c.a, c.b) for f in families for c in f.comparisons))
        rows = []
        for a, b in pairs:
            row = {"a − b": f"{a} − {b}"}
            for f in families:
                c = next((c for c in f.comparisons if (c.a, c.b) == (a, b)), None)
                row[f.point.label] = c.cell() if c is not None else "n/a"
            rows.append(row)
        rows.append({"a − b": "best (mean)"} | {f.point.label: f.best or "n/a" for f in families})
        return pd.DataFrame(rows)

    def detail_table(self, metric: str | None = None) -> pd.DataFrame:
        """Every comparison of ``metric`` with both intervals, p-values and its verdict."""
        metric = metric or self.primary
        rows = []
        for f in (f for f in self.families if f.metric == metric):
            for c in f.comparisons:
                rows.append({
                    "axis": f.point.axis, "budget": f.point.label, "a − b": f"{c.a} − {c.b}",
                    "a": c.a_est.text(4), "b": c.b_est.text(4),
                    "difference [Welch 95%]": c.cell()[:-2],
                    f"bootstrap 95% (over {c.boot_over})": _interval(c.boot),
                    "p (Welch)": f"{c.p:.2g}", "p (Holm)": f"{c.p_holm:.2g}", "verdict": c.verdict()})
            if f.missing:
                rows.append({"axis": f.point.axis, "budget": f.point.label,
                             "a − b": ", ".join(f.missing), "verdict": "no value at this budget (outside the "
                             "range its completed runs cover)" if f.point.axis == AXIS_SECONDS else "not run"})
        return pd.DataFrame(rows).astype(object).fillna("")

    def headline(self) -> list[str]:
        """One sentence per cost axis of the primary metric, built from what is resolved there."""
        out = []
        for axis in self.axes():
            families = self.of(self.primary, axis)
            budgets = ", ".join(f.point.label for f in families)
            direction = "higher" if higher_is_better(self.primary) else "lower"
            resolved = [c for f in families for c in f.comparisons if c.resolved]
            n_total = sum(len(f.comparisons) for f in families)
            if not resolved:
                out.append(f"At {axis}, budgets {budgets}: no comparison on {self.primary} is resolved "
                           f"({n_total} tested, α = {ALPHA:g} with Holm per budget): the configurations are not "
                           "distinguishable at these budgets.")
                continue
            wins: dict[tuple[str, str], list[str]] = {}
            for f in families:
                for c in f.comparisons:
                    if c.resolved:
                        loser = c.b if c.better == c.a else c.a
                        wins.setdefault((c.better, loser), []).append(f.point.label)
            clauses = [f"{w} over {l} at {_budgets(v, len(families))}" for (w, l), v in
                       sorted(wins.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
            best = [f.best for f in families]
            top = max(set(best), key=best.count)
            out.append(f"At {axis}, budgets {budgets}: {self.primary} ({direction} is better): {top} has the "
                       f"best mean at {best.count(top)} of {len(families)} budgets; resolved ({len(resolved)} of "
                       f"{n_total} comparisons, α = {ALPHA:g}, Holm per budget): " + "; ".join(clauses) + ".")
        if not out:
            out.append(f"No budget at which every configuration completed its schedule: nothing on {self.primary} "
                       "can be compared yet.")
        return out


def _budgets(labels: list[str], n: int) -> str:
    return f"all {n} budgets" if len(labels) == n and n > 1 else ", ".join(labels)


def _interval(bounds: tuple[float, float]) -> str:
    low, high = bounds
    if low != low:  # NaN
        return "n/a"
    return f"[{low:+.3g}, {high:+.3g}]"


def study_answer(frame: pd.DataFrame, sweep: str, metrics: tuple[str, ...], *,
                 structures: pd.DataFrame | None = None, primary: str = PRIMARY_METRIC,
                 n_bootstrap: int = 2000) -> list[StudyAnswer]:
    """Every applicable study compared on every logged metric of ``metrics`` at every budget point.

    frame: tidy (run, step) table; structures: per-structure values (``analysis.collect.read_structure_metrics``).
    Raises ReportInputError when no run has completed its schedule."""
    if "group" not in frame:
        frame = frame.assign(group=group_column(frame))
    completed = require_study(frame)
    points = budget_points(completed)
    out = []
    for study in studies_for(frame, sweep):
        groups = sorted({g for pair in study.pairs for g in pair})
        pairs = all_pairs(groups, GROUP_ORDER) if study.all_pairs else list(study.pairs)
        answer = StudyAnswer(study, primary, completed=completed)
        for metric in dict.fromkeys((primary, *metrics)):
            if metric not in completed or completed[metric].isna().all():
                continue
            for point in points:
                family = compare_family(completed.assign(group=completed[study.by].astype(str)), metric, point,
                                        pairs, structures=structures, n_bootstrap=n_bootstrap)
                if family.comparisons:
                    answer.families.append(family)
        if not any(p.axis == AXIS_FLOPS for p in points):
            answer.notes.append("matched compute (FLOPs): not in this design (runs end at their own FLOPs; a "
                                "sweep's `study: budgets` trains every configuration to the same FLOPs)")
        if not any(p.axis == AXIS_STEPS for p in points):
            answer.notes.append("matched steps: not in this design (`study: steps` adds it)")
        out.append(answer)
    return out


__all__ = ["StudyAnswer", "study_answer", "AXIS_FLOPS", "AXIS_STEPS", "AXIS_SECONDS", "BudgetPoint"]
