"""The question a study asks, answered at matched training compute (the report's first section).

Each run's validation curve is interpolated linearly in log cumulative FLOPs to one common budget: by default
the largest compute every compared run reached (and at least the smallest compute at which every run had
validated, so nothing is extrapolated). Per configuration the seeds' values at that budget give an
:class:`analysis.seeds.Estimate`; a pair's difference gets a Welch interval, and is called *resolved* only
when every seed spread is known (≥ 2 seeds each) and the interval excludes 0.

    studies = studies_for(frame, "width_vs_depth")
    for study in studies:
        for c in compare_at_compute(frame, "val/loss", study): print(c.statement())
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.collect import ReportInputError
from analysis.fits import SCORE_MARKERS
from analysis.seeds import Difference, Estimate, difference, estimate, run_noise


@dataclass(frozen=True)
class Study:
    """Pairs of groups to compare: ``a − b`` for each ``(a, b)`` in ``pairs``; groups are the values of the
    tidy frame's column ``by`` (``group`` is derived by :func:`group_column`)."""

    name: str
    by: str
    pairs: tuple[tuple[str, str], ...]
    question: str
    all_pairs: bool = False  # compare every pair of the groups present, not only ``pairs``


WIDTH_VS_DEPTH = Study(
    "width_vs_depth", "group",
    tuple((wide, other) for wide in ("medium", "large") for other in ("deep_pairformer", "deep_structure", "base")),
    "How should a fixed training budget be spent: a wider pair track (medium, large), a deeper Pairformer "
    "(deep_pairformer) or a deeper structure module (deep_structure) than base? Every pair is compared.",
    all_pairs=True)
ATTENTION = Study(
    "attention_ablation", "attention",
    (("additive", "vanilla"), ("gated", "vanilla"), ("gated", "additive")),
    "At matched training compute, how do the linear triangle-attention forms (additive, gated) compare with "
    "softmax (vanilla) and with each other?")
STUDIES = (WIDTH_VS_DEPTH, ATTENTION)


def group_column(frame: pd.DataFrame) -> pd.Series:
    """Study group of each row: the paper configuration the preset names (``mini_medium`` → ``medium``),
    else the configuration name."""
    from analysis.tables import paper_row_for

    def group(preset: str, config: str) -> str:
        row = paper_row_for(str(preset))
        return row.name if row is not None else str(config)

    return pd.Series([group(p, c) for p, c in zip(frame["preset"], frame["config"], strict=True)],
                     index=frame.index)


def studies_for(frame: pd.DataFrame, sweep: str) -> list[Study]:
    """The studies that apply to the runs: the sweep's own study by name, else every study with at least one
    pair whose both groups were run. Pairs with a group not run are dropped."""
    named = [s for s in STUDIES if s.name == sweep]
    out = []
    for study in named or STUDIES:
        present = set(frame[study.by].dropna().astype(str)) if study.by in frame else set()
        pairs = tuple(p for p in study.pairs if p[0] in present and p[1] in present)
        if pairs:
            out.append(Study(study.name, study.by, pairs, study.question, study.all_pairs))
    return out


def higher_is_better(metric: str) -> bool:
    return any(marker in metric.lower() for marker in SCORE_MARKERS)


@dataclass(frozen=True)
class Comparison:
    """``a − b`` of ``metric`` at ``budget`` FLOPs, over seeds and estimator noise."""

    metric: str
    a: str
    b: str
    budget: float
    a_est: Estimate
    b_est: Estimate
    diff: Difference

    @property
    def resolved(self) -> bool:
        return self.a_est.seed_spread_known and self.b_est.seed_spread_known and self.diff.excludes_zero \
            and not math.isnan(self.diff.low)

    @property
    def better(self) -> str | None:
        """The configuration that is better when resolved, else None."""
        if not self.resolved:
            return None
        a_higher = self.diff.value > 0
        return self.a if a_higher == higher_is_better(self.metric) else self.b

    def verdict(self) -> str:
        if self.resolved:
            return f"resolved: {self.better} is better"
        if not (self.a_est.seed_spread_known and self.b_est.seed_spread_known):
            single = [c for c, e in ((self.a, self.a_est), (self.b, self.b_est)) if not e.seed_spread_known]
            why = "one seed of " + " and ".join(single) + ", so the seed-to-seed spread is unknown"
            if math.isnan(self.diff.low):
                why += " and no estimator noise was recorded"
            return f"not resolved at this budget ({why})"
        return "not resolved at this budget (the interval contains 0)"

    def statement(self) -> str:
        d = self.diff
        return (f"{self.a} − {self.b}, {self.metric} at {self.budget:.3g} FLOPs: {signed_interval(d)} "
                f"({self.a} {self.a_est.text(3)}; {self.b} {self.b_est.text(3)}) — {self.verdict()}")


def signed_interval(d: Difference) -> str:
    """``-0.70 [-0.81, -0.59]``: as many decimals as the interval's half-width supports (2 significant digits),
    so a difference of 1e-11 inside ±0.011 reads +0.000, not +1e-11."""
    if math.isnan(d.low):
        return f"{d.value:+.3g} [n/a]"
    half = (d.high - d.low) / 2
    decimals = max(0, 1 - math.floor(math.log10(half))) if half > 0 else 3
    return f"{d.value:+.{decimals}f} [{d.low:+.{decimals}f}, {d.high:+.{decimals}f}]"


def value_at(flops: np.ndarray, values: np.ndarray, budget: float) -> float:
    """A curve's value at ``budget`` FLOPs, linear in log FLOPs between the bracketing points (C > 0 only)."""
    keep = (flops > 0) & np.isfinite(values)
    x, y = np.log(flops[keep]), values[keep]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) == 0 or not x[0] <= math.log(budget) <= x[-1] * (1 + 1e-12):
        raise ReportInputError(f"budget {budget:.3g} FLOPs is outside the curve's range")
    return float(np.interp(math.log(budget), x, y))


def untrained_only(frame: pd.DataFrame, metric: str) -> list[str]:
    """Runs that logged ``metric`` only before training (at zero FLOPs): nothing to interpolate."""
    logged = frame.dropna(subset=[metric])
    trained = set(logged.loc[logged["flops"] > 0, "run"])
    return sorted(set(logged["run"]) - trained)


def matched_budget(frame: pd.DataFrame, metric: str) -> float:
    """The largest compute every run of ``frame`` reached while logging ``metric`` (FLOPs).

    Raises ReportInputError when a run logged ``metric`` only at step 0, or when the runs' compute ranges do
    not overlap (one run's first validation after another's last): then no budget compares them without
    extrapolating."""
    lacking = untrained_only(frame, metric)
    if lacking:
        raise ReportInputError(f"runs {lacking} logged {metric!r} only before training")
    points = frame.dropna(subset=[metric])
    points = points[points["flops"] > 0]
    if points.empty:
        raise ReportInputError(f"no run logged {metric!r} after any training compute")
    per_run = points.groupby("run")["flops"]
    high, low = float(per_run.max().min()), float(per_run.min().max())
    if high < low:
        first, last = per_run.min().idxmax(), per_run.max().idxmin()
        raise ReportInputError(f"the runs' compute ranges do not overlap: {first} first validated at {low:.3g} "
                               f"FLOPs, after {last} had stopped at {high:.3g}; validate earlier (a log-spaced "
                               "schedule) so that every run has points below the smallest run's budget")
    return high


def values_at_budget(frame: pd.DataFrame, metric: str, budget: float, by: str) -> pd.DataFrame:
    """One row per run: ``run``, ``group`` (the value of column ``by``), ``seed``, ``value`` at ``budget``,
    ``noise`` (recorded estimator noise, NaN when absent)."""
    noise = run_noise(frame, metric)
    rows = []
    for run, curve in frame.dropna(subset=[metric]).groupby("run", sort=False):
        rows.append({"run": run, "group": str(curve[by].iloc[0]), "seed": curve["seed"].iloc[0],
                     "value": value_at(curve["flops"].to_numpy(float), curve[metric].to_numpy(float), budget),
                     "noise": noise.get(run, math.nan)})
    return pd.DataFrame(rows, columns=["run", "group", "seed", "value", "noise"])


def compare_at_compute(frame: pd.DataFrame, metric: str, study: Study, budget: float | None = None,
                       confidence: float = 0.95) -> list[Comparison]:
    """Every pair of ``study`` compared on ``metric`` at ``budget`` FLOPs (default: :func:`matched_budget` over
    the runs of the compared groups). frame: tidy (run, step) table, with column ``study.by``
    (``group``: see :func:`group_column`). Raises ReportInputError when a group logged no ``metric``."""
    if metric not in frame:
        raise ReportInputError(f"no run logged {metric!r}")
    groups = {g for pair in study.pairs for g in pair}
    runs = frame[frame[study.by].astype(str).isin(groups)]
    if budget is None:
        budget = matched_budget(runs, metric)
    values = values_at_budget(runs, metric, budget, study.by)
    estimates = {g: estimate(v["value"].to_numpy(), v["noise"].to_numpy(), confidence)
                 for g, v in values.groupby("group")}
    missing = sorted(groups - set(estimates))
    if missing:
        raise ReportInputError(f"{metric}: no run of {missing} logged it")
    return [Comparison(metric, a, b, budget, estimates[a], estimates[b],
                       difference(estimates[a], estimates[b], confidence)) for a, b in study.pairs]


@dataclass(frozen=True)
class Answer:
    """One study's answer on one metric: its comparisons at the matched budget, or why there are none."""

    study: Study
    metric: str
    comparisons: tuple[Comparison, ...]
    problem: str = ""
    excluded: tuple[str, ...] = ()  # runs left out: they logged the metric only before training
    limited_by: str = ""  # the run whose last validation set the budget, with its status

    def summary(self) -> str:
        """One plain sentence: how many comparisons are resolved, which way, at which budget."""
        if self.problem:
            return f"{self.metric}: not comparable at matched compute: {self.problem}"
        resolved = [c for c in self.comparisons if c.resolved]
        budget = self.comparisons[0].budget
        text = f"{self.metric} at {budget:.3g} FLOPs: {len(resolved)} of {len(self.comparisons)} comparisons resolved"
        if resolved:
            wins = (f"{c.better} better than {c.b if c.better == c.a else c.a}" for c in resolved)
            text += " (" + "; ".join(wins) + ")"
        unresolved = len(self.comparisons) - len(resolved)
        text += f"; {unresolved} not resolved at this budget" if unresolved else ""
        if self.limited_by:
            text += f" (budget set by {self.limited_by})"
        if self.excluded:
            text += f"; left out, no {self.metric} after step 0: {', '.join(self.excluded)}"
        return text

    def lines(self) -> list[str]:
        if self.problem:
            return [self.summary()]
        return [self.summary(), *[c.statement() for c in self.comparisons]]


def answer(frame: pd.DataFrame, sweep: str, metrics: tuple[str, ...], confidence: float = 0.95) -> list[Answer]:
    """Every applicable study (:func:`studies_for`) compared on every logged metric of ``metrics``.

    frame: tidy (run, step) table; a ``group`` column is added to a copy when absent."""
    if "group" not in frame:
        frame = frame.assign(group=group_column(frame))
    out = []
    for study in studies_for(frame, sweep):
        for metric in metrics:
            if metric not in frame or frame[metric].isna().all():
                continue
            groups = {g for pair in study.pairs for g in pair}
            runs = frame[frame[study.by].astype(str).isin(groups)]
            # A run still at its first validation (or crashed before the next) has no curve to read.
            excluded = untrained_only(runs, metric)
            left_out = tuple(runs.loc[runs["run"].isin(excluded), "name"].drop_duplicates())
            runs = runs[~runs["run"].isin(excluded)]
            try:
                budget = matched_budget(runs, metric)
                comparisons = tuple(compare_at_compute(runs, metric, study, budget, confidence))
            except ReportInputError as exc:
                out.append(Answer(study, metric, (), str(exc), left_out))
                continue
            out.append(Answer(study, metric, comparisons, "", left_out, _limiting_run(runs, metric)))
    return out


def _limiting_run(frame: pd.DataFrame, metric: str) -> str:
    """``large-s1 (running, step 12)``: the run whose last validation of ``metric`` is the smallest compute."""
    points = frame.dropna(subset=[metric])
    last = points.loc[points.groupby("run")["flops"].idxmax()]
    row = last.loc[last["flops"].idxmin()]
    status = f"{row['status']}, " if "status" in row and row["status"] else ""
    return f"{row['name']} ({status}step {int(row['step'])})"


def answer_table(answers: list[Answer]) -> pd.DataFrame:
    """The comparisons as a table: study, metric, pair, budget, both estimates, the difference and verdict."""
    rows = []
    for a in answers:
        if a.problem:
            rows.append({"study": a.study.name, "metric": a.metric, "verdict": f"not comparable: {a.problem}"})
        for c in a.comparisons:
            d = c.diff
            rows.append({
                "study": a.study.name, "metric": c.metric, "a − b": f"{c.a} − {c.b}",
                "budget (FLOPs)": f"{c.budget:.3g}", "a": c.a_est.text(4), "b": c.b_est.text(4),
                "difference [95% interval]": signed_interval(d),
                "verdict": c.verdict()})
    return pd.DataFrame(rows).astype(object).fillna("")
