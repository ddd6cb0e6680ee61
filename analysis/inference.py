"""Comparisons a statistician signs: each configuration's value at a budget over its seeds, every pair's
difference with Welch's interval *and* a bootstrap interval, and Holm–Bonferroni over each family.

- **Estimate** per configuration: the mean over seeds; the spread is the seeds' own, floored at the recorded
  estimator noise (:mod:`analysis.seeds`).
- **Welch**: the difference's t interval and two-sided p-value (Welch–Satterthwaite df). With 2–4 seeds its tails
  carry the verdict, so it is never alone:
- **bootstrap**: a hierarchical percentile interval — seeds resampled within each configuration and, when the
  runs recorded per-structure values, validation structures resampled jointly for both (the same structures,
  paired). With 3 seeds an exact permutation test cannot go below p = 0.10; the bootstrap interval says how much
  of the difference survives resampling what was sampled.
- **Family**: one metric, one cost axis, one budget — the pairwise comparisons that answer "which configuration
  is best here". Holm–Bonferroni adjusts the Welch p-values within it.
- **Resolved**: both configurations have ≥ 2 seeds, the Holm-adjusted p is below α, and the bootstrap interval
  (when there is one) excludes 0. Anything else is "not resolved at this budget".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.seeds import Difference, Estimate, difference, estimate
from analysis.study import BudgetPoint, values_at

ALPHA = 0.05
N_BOOTSTRAP = 2000
SCORE_MARKERS = ("lddt", "dockq", "success", "accuracy", "precision")


def higher_is_better(metric: str) -> bool:
    return any(marker in metric.lower() for marker in SCORE_MARKERS)


@dataclass(frozen=True)
class PairComparison:
    """``a − b`` of ``metric`` at ``point``."""

    metric: str
    point: BudgetPoint
    a: str
    b: str
    a_est: Estimate
    b_est: Estimate
    diff: Difference
    p: float  # Welch, two-sided
    boot: tuple[float, float]  # percentile interval, (nan, nan) when not bootstrapped
    boot_over: str  # "seeds", "seeds and structures"
    p_holm: float = math.nan
    alpha: float = ALPHA

    @property
    def seeds_known(self) -> bool:
        return self.a_est.seed_spread_known and self.b_est.seed_spread_known

    @property
    def resolved(self) -> bool:
        boot_ok = math.isnan(self.boot[0]) or self.boot[0] > 0 or self.boot[1] < 0
        return self.seeds_known and self.p_holm < self.alpha and boot_ok and self.diff.excludes_zero

    @property
    def better(self) -> str | None:
        if not self.resolved:
            return None
        return self.a if (self.diff.value > 0) == higher_is_better(self.metric) else self.b

    def verdict(self) -> str:
        if self.resolved:
            return f"resolved: {self.better} better"
        if not self.seeds_known:
            single = [c for c, e in ((self.a, self.a_est), (self.b, self.b_est)) if not e.seed_spread_known]
            return f"not resolved at this budget (one seed of {' and '.join(single)})"
        reasons = []
        if not self.p_holm < self.alpha:
            reasons.append(f"Holm p {self.p_holm:.2g}")
        if not (math.isnan(self.boot[0]) or self.boot[0] > 0 or self.boot[1] < 0):
            reasons.append("bootstrap interval contains 0")
        return "not resolved at this budget (" + "; ".join(reasons or ["interval contains 0"]) + ")"

    def cell(self) -> str:
        """A compact table cell: ``+0.12 [+0.05, +0.19] ✓`` (✓ resolved, · not)."""
        return f"{signed_interval(self.diff)} {'✓' if self.resolved else '·'}"


@dataclass
class Family:
    """The comparisons of one metric on one axis at one budget, Holm-adjusted together."""

    metric: str
    point: BudgetPoint
    comparisons: list[PairComparison] = field(default_factory=list)
    estimates: dict[str, Estimate] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # groups with no value here (e.g. outside their range)

    @property
    def best(self) -> str | None:
        if not self.estimates:
            return None
        pick = max if higher_is_better(self.metric) else min
        return pick(self.estimates, key=lambda g: self.estimates[g].mean)


def signed_interval(d: Difference) -> str:
    """``-0.70 [-0.81, -0.59]`` with as many decimals as the interval's half-width supports."""
    if math.isnan(d.low):
        return f"{d.value:+.3g} [n/a]"
    half = (d.high - d.low) / 2
    decimals = max(0, 1 - math.floor(math.log10(half))) if half > 0 else 3
    return f"{d.value:+.{decimals}f} [{d.low:+.{decimals}f}, {d.high:+.{decimals}f}]"


def welch_p(d: Difference) -> float:
    if not d.se > 0 or math.isnan(d.se):
        return math.nan
    t = abs(d.value) / d.se
    return float(2 * (stats.norm.sf(t) if math.isinf(d.df) else stats.t.sf(t, d.df)))


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and does not count towards m)."""
    finite = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(finite)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _bootstrap(a_seeds: np.ndarray, b_seeds: np.ndarray, a_struct: np.ndarray | None, b_struct: np.ndarray | None,
               n: int, rng: np.random.Generator, confidence: float) -> tuple[float, float]:
    """Percentile interval of mean(a) − mean(b). a_struct, b_struct: (seeds, structures) per-structure values of
    the same structures (columns aligned), or None to resample seeds only."""
    if len(a_seeds) < 2 or len(b_seeds) < 2:
        return math.nan, math.nan
    ia = rng.integers(0, len(a_seeds), (n, len(a_seeds)))
    ib = rng.integers(0, len(b_seeds), (n, len(b_seeds)))
    if a_struct is None or b_struct is None:
        diffs = a_seeds[ia].mean(1) - b_seeds[ib].mean(1)
    else:
        k = a_struct.shape[1]
        js = rng.integers(0, k, (n, k))
        # (n, seeds, k) picked structures, mean over structures (NaN-aware: undefined per structure), then seeds.
        a_val = np.nanmean(np.take_along_axis(a_struct[ia], js[:, None, :].repeat(len(a_seeds), 1), 2), 2).mean(1)
        b_val = np.nanmean(np.take_along_axis(b_struct[ib], js[:, None, :].repeat(len(b_seeds), 1), 2), 2).mean(1)
        diffs = a_val - b_val
    diffs = diffs[np.isfinite(diffs)]
    tail = 50 * (1 - confidence)
    return float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail))


def _structure_matrix(structures: pd.DataFrame | None, runs: list[str], metric: str,
                      steps: dict[str, int]) -> tuple[np.ndarray | None, list[str]]:
    """(len(runs), structures) values of ``metric`` at each run's last step, columns in a shared order."""
    if structures is None or structures.empty:
        return None, []
    sub = structures[(structures["metric"] == metric) & structures["run"].isin(runs)]
    sub = sub[sub["step"] == sub["run"].map(steps)]
    if sub.empty or set(sub["run"]) != set(runs):
        return None, []
    table = sub.pivot_table(index="run", columns="structure", values="value", aggfunc="last")
    return table.reindex(runs).to_numpy(float), list(table.columns)


def compare_family(completed: pd.DataFrame, metric: str, point: BudgetPoint, pairs: list[tuple[str, str]], *,
                   structures: pd.DataFrame | None = None, confidence: float = 0.95, n_bootstrap: int = N_BOOTSTRAP,
                   seed: int = 0) -> Family:
    """Every pair of ``pairs`` (groups) compared on ``metric`` at ``point``, Holm-adjusted as one family.

    completed: ``analysis.study.completed_runs``; structures: ``analysis.collect.read_structure_metrics`` (or
    None). Pairs with a group that has no value at ``point`` are left out (``Family.missing`` names it)."""
    values = values_at(completed, metric, point)
    family = Family(metric, point)
    groups = {g for pair in pairs for g in pair}
    per_group = {str(g): v for g, v in values.groupby("group") if str(g) in groups}
    for g, v in per_group.items():
        family.estimates[g] = estimate(v["value"].to_numpy(), v["noise"].to_numpy(), confidence)
    family.missing = sorted(groups - set(family.estimates))
    rng = np.random.default_rng(seed)
    steps = dict(zip(completed["run"], completed["steps"], strict=False))
    comparisons = []
    for a, b in pairs:
        if a not in family.estimates or b not in family.estimates:
            continue
        ea, eb = family.estimates[a], family.estimates[b]
        d = difference(ea, eb, confidence)
        va, vb = per_group[a], per_group[b]
        over = "seeds"
        a_struct = b_struct = None
        if not va["interpolated"].any():
            ma, cols_a = _structure_matrix(structures, list(va["run"]), metric, steps)
            mb, cols_b = _structure_matrix(structures, list(vb["run"]), metric, steps)
            if ma is not None and mb is not None and cols_a == cols_b:
                a_struct, b_struct, over = ma, mb, "seeds and structures"
        boot = _bootstrap(va["value"].to_numpy(float), vb["value"].to_numpy(float), a_struct, b_struct,
                          n_bootstrap, rng, confidence)
        comparisons.append(PairComparison(metric, point, a, b, ea, eb, d, welch_p(d), boot, over))
    adjusted = holm([c.p for c in comparisons])
    family.comparisons = [PairComparison(**{**c.__dict__, "p_holm": p}) for c, p in zip(comparisons, adjusted,
                                                                                          strict=True)]
    return family


def all_pairs(groups: list[str], order: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every unordered pair, written ``a − b`` with ``b`` the earlier of ``order`` (base first, so differences
    read "against base"); groups outside ``order`` come after it, alphabetically."""
    ranked = sorted(groups, key=lambda g: (order.index(g) if g in order else len(order), g))
    return [(ranked[j], ranked[i]) for i in range(len(ranked)) for j in range(i + 1, len(ranked))]
