"""Compute-optimal advice from the isoFLOP points: the best configuration per budget, the allocation rule
N_opt ∝ C^a, and a recommendation for a GPU budget, or the reason there is none.

- Per FLOPs budget (:func:`budget_optima`): the configuration with the lowest seed-mean target (loss, or
  1 − score), how often each configuration is best over the bootstrap resamples, and the gap from the best to
  the runner-up with its interval.
- Allocation (:func:`allocation`, Chinchilla's "Approach 2"): per budget a parabola of the target in log N
  through the configurations, its vertex N_opt(C); then log N_opt = log k + a·log C by least squares over the
  budgets; both redone in every resample, so a's interval carries the seeds' noise. Refused when a vertex lies
  outside the studied sizes (the optimum is not inside the design), in more than 10 % of resamples, or when
  a's interval is wider than 0.5 (half the range allocation exponents take). N mixes width and depth here:
  configurations of similar size but different shape sit on one parabola.
- Allocation from L(N, D) (:func:`allocation_from_law`, "Approach 3"): with FLOPs per example ≈ f0·N^κ
  (fitted over the configurations), minimising E + A/N^α + B/D^β at D = C/(f0·N^κ) gives
  N_opt = [αA/(κβB)·(C/f0)^β]^(1/(α+κβ)), so a = β/(α + κβ), with the law's bootstrap as its interval. The
  parabola is biased where isoFLOP curves are not parabolas in log N (Open-Athena 2026); the law's rule is
  used for the recommendation when L(N, D) is presented.
- :func:`advise`: GPU-hours → FLOPs (peak dense BF16 FLOP/s per GPU × MFU), the extrapolation factor over the
  largest studied budget, and whether a law's backtest supports extrapolating that far (the largest factor by
  which a presented law, refitted without its largest budget, predicted it and passed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.cells import KIND_FLOPS, Cells, cells_of
from analysis.collect import ReportInputError
from analysis.study_laws import HOLDOUT_BUDGET, LAW_C, LAW_ND, StudyLaw, study_law, target_cells

# Peak dense (no 2:4 sparsity) BF16 tensor-core FLOP/s per GPU, from the vendors' datasheets.
GPU_PEAK_FLOPS = {
    "H100": 989.4e12,  # NVIDIA H100 SXM5 datasheet: BF16 1,979 TFLOPS with sparsity, half that dense
    "H100-PCIE": 756.0e12,  # NVIDIA H100 PCIe datasheet: BF16 1,513 TFLOPS with sparsity
    "H200": 989.4e12,  # NVIDIA H200 SXM datasheet: BF16 1,979 TFLOPS with sparsity (H100's compute, more memory)
    "A100": 312.0e12,  # NVIDIA A100 (40 and 80 GB) datasheet: BF16 312 TFLOPS dense, 624 with sparsity
    "L40S": 362.05e12,  # NVIDIA L40S datasheet: BF16 362.05 TFLOPS dense, 733 with sparsity
    "MI300X": 1307.4e12,  # AMD Instinct MI300X datasheet: peak BF16 1,307.4 TFLOPS dense
}
DEFAULT_MFU = 0.35  # model FLOPs utilisation: achieved / peak; large-model training typically reaches 0.3–0.5
MAX_ALLOCATION_WIDTH = 0.5
MAX_EDGE_SHARE = 0.10


@dataclass(frozen=True)
class BudgetOptimum:
    """The best configuration at one FLOPs budget. Values are the target (lower is better): ``value`` with its
    bootstrap interval; ``share``: fraction of resamples in which each configuration is best; ``gap``:
    runner-up − best with its interval (``resolved`` when the interval excludes 0); ``steps``: the best
    configuration's steps at this budget."""

    budget: float
    best: str
    params: float
    steps: float
    value: float
    low: float
    high: float
    share: dict[str, float]
    runner_up: str | None
    gap: float
    gap_low: float
    gap_high: float

    @property
    def resolved(self) -> bool:
        return bool(self.gap_low > 0)

    def text(self, target: str) -> str:
        if self.runner_up is None:
            return f"{self.budget:.3g} FLOPs: {self.best} is the only configuration"
        # This pair alone, without the correction for the budget's other pairs: the report's answer (Holm over
        # every pair at the budget) is the verdict to quote.
        verdict = ("resolved" if self.resolved else "not resolved") + " for this pair alone, before Holm"
        return (f"{self.budget:.3g} FLOPs: {self.best} ({self.params:.3g} parameters, {self.steps:.0f} steps) "
                f"{target} {self.value:.4g} [{self.low:.4g}, {self.high:.4g}], best in "
                f"{100 * self.share.get(self.best, 0):.0f} % of resamples; {self.runner_up} is "
                f"{self.gap:+.3g} [{self.gap_low:+.3g}, {self.gap_high:+.3g}] behind ({verdict})")


def budget_optima(cells: Cells) -> list[BudgetOptimum]:
    """Per FLOPs budget with at least one configuration, its :class:`BudgetOptimum` (cells on the target scale,
    :func:`analysis.study_laws.target_cells`)."""
    table = cells.table
    out = []
    tail = 50.0 * (1.0 - cells.confidence)
    for budget in np.unique(table.loc[table["kind"] == KIND_FLOPS, "budget"]):
        cols = np.flatnonzero(((table["kind"] == KIND_FLOPS) & (table["budget"] == budget)).to_numpy())
        values = table["value"].to_numpy()[cols]
        order = np.argsort(values)
        best, configs = cols[order[0]], table["config"].to_numpy()[cols]
        reps = cells.replicates[:, cols]
        winners = configs[reps.argmin(axis=1)] if len(reps) else np.array([configs[order[0]]])
        share = {str(c): float(np.mean(winners == c)) for c in configs}
        low, high = np.percentile(reps[:, order[0]], [tail, 100 - tail]) if len(reps) else (values[order[0]],) * 2
        runner, gap, gap_low, gap_high = None, math.nan, math.nan, math.nan
        if len(cols) > 1:
            runner = str(configs[order[1]])
            gap = float(values[order[1]] - values[order[0]])
            gaps = reps[:, order[1]] - reps[:, order[0]]
            gap_low, gap_high = (np.percentile(gaps, [tail, 100 - tail]) if len(reps) else (gap, gap))
        out.append(BudgetOptimum(budget=float(budget), best=str(table["config"].iloc[best]),
                                 params=float(table["params"].iloc[best]),
                                 steps=float(table["budget_steps"].iloc[best]), value=float(values[order[0]]),
                                 low=float(low), high=float(high), share=share, runner_up=runner, gap=gap,
                                 gap_low=float(gap_low), gap_high=float(gap_high)))
    return out


@dataclass(frozen=True)
class Allocation:
    """N_opt = k·C^a. ``minima``: per budget the parabola's vertex ``n_opt`` with its interval
    (``n_opt_low``/``n_opt_high``, over the resamples whose vertex stayed inside) and ``edge_share`` (resamples
    whose vertex left the studied sizes); ``samples``: (a, log k) per resample that
    had a vertex inside at every budget; ``problem``: why the rule is not identified (None: it is)."""

    a: float
    log_k: float
    interval: tuple[float, float]
    minima: pd.DataFrame
    samples: np.ndarray
    problem: str | None
    confidence: float = 0.95

    def n_opt(self, budget: float) -> tuple[float, float, float]:
        """N_opt at ``budget`` FLOPs: point, low, high (over the resamples)."""
        point = math.exp(self.log_k + self.a * math.log(budget))
        values = np.exp(self.samples[:, 1] + self.samples[:, 0] * math.log(budget))
        tail = 50.0 * (1.0 - self.confidence)
        return point, float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))

    method: str = "isoFLOP parabolas"

    def text(self) -> str:
        if self.problem is not None:
            return f"Allocation rule N_opt ∝ C^a ({self.method}) not fitted: {self.problem}"
        return (f"Allocation rule N_opt ∝ C^a ({self.method}): a = {self.a:.3f} [{self.interval[0]:.3f}, "
                f"{self.interval[1]:.3f}]")


def _vertices(z: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parabola y = c0 + c1·z + c2·z² through (z, values[r]) for each row r: vertex z* (R,) and whether it is a
    minimum inside [min z, max z]."""
    design = np.column_stack([np.ones_like(z), z, z**2])
    coef = np.linalg.lstsq(design, values.T, rcond=None)[0]  # (3, R)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = -coef[1] / (2.0 * coef[2])
    inside = (coef[2] > 0) & (vertex >= z.min()) & (vertex <= z.max())
    return vertex, inside


def allocation(cells: Cells) -> Allocation:
    """The allocation rule from the isoFLOP cells (on the target scale); see the module docstring."""
    table = cells.table
    rows, vert_reps, inside_reps = [], [], []
    for budget in np.unique(table.loc[table["kind"] == KIND_FLOPS, "budget"]):
        cols = np.flatnonzero(((table["kind"] == KIND_FLOPS) & (table["budget"] == budget)).to_numpy())
        z = np.log(table["params"].to_numpy()[cols])
        if len(np.unique(z)) < 3:
            continue
        values = np.vstack([table["value"].to_numpy()[cols][None], cells.replicates[:, cols]])
        vertex, inside = _vertices(z, values)
        tail = 50.0 * (1.0 - cells.confidence)
        kept = vertex[1:][inside[1:]]
        low, high = np.exp(np.percentile(kept, [tail, 100 - tail])) if len(kept) else (math.nan, math.nan)
        rows.append({"budget": float(budget), "vertex": vertex[0], "inside": bool(inside[0]),
                     "n_opt": float(np.exp(vertex[0])) if inside[0] else math.nan,
                     "n_opt_low": float(low), "n_opt_high": float(high),
                     "edge_share": float(1 - inside[1:].mean()) if len(inside) > 1 else math.nan,
                     "n_min": float(np.exp(z.min())), "n_max": float(np.exp(z.max()))})
        vert_reps.append(vertex[1:])
        inside_reps.append(inside[1:])
    minima = pd.DataFrame(rows)
    empty = Allocation(math.nan, math.nan, (math.nan, math.nan), minima, np.zeros((0, 2)), None, cells.confidence)
    if len(rows) < 3:
        return _refused(empty, f"{len(rows)} FLOPs budget(s) with at least 3 configuration sizes; the rule "
                               "needs at least 3")
    outside = minima[~minima["inside"]]
    if len(outside):
        b = outside.iloc[0]
        return _refused(empty, f"at {b['budget']:.3g} FLOPs the isoFLOP minimum is not inside the studied sizes "
                               f"[{b['n_min']:.3g}, {b['n_max']:.3g}] (the best configuration is at an edge, or "
                               "the curve is not convex): the optimum lies outside the design")
    log_c = np.log(minima["budget"].to_numpy())
    a, log_k = np.polyfit(log_c, minima["vertex"].to_numpy(), 1)
    verts, inside = np.array(vert_reps).T, np.array(inside_reps).T  # (B, budgets)
    ok = inside.all(axis=1)
    tail = 50.0 * (1.0 - cells.confidence)
    fits = np.array([np.polyfit(log_c, v, 1) for v in verts[ok]]) if ok.any() else np.zeros((0, 2))
    interval = (tuple(float(v) for v in np.percentile(fits[:, 0], [tail, 100 - tail])) if len(fits)
                else (math.nan, math.nan))
    result = Allocation(float(a), float(log_k), interval, minima, fits, None, cells.confidence)  # type: ignore[arg-type]
    edge = 1 - ok.mean() if len(ok) else 1.0
    if edge > MAX_EDGE_SHARE:
        return _refused(result, f"in {100 * edge:.0f} % of resamples some budget's minimum leaves the studied "
                                f"sizes (more than {100 * MAX_EDGE_SHARE:.0f} %): the optimum is not pinned down")
    if not interval[1] - interval[0] <= MAX_ALLOCATION_WIDTH:
        return _refused(result, f"a = {a:.3f} has the interval [{interval[0]:.3f}, {interval[1]:.3f}], wider than "
                                f"{MAX_ALLOCATION_WIDTH}: the exponent is not identified")
    return result


def _refused(a: Allocation, problem: str) -> Allocation:
    return Allocation(a.a, a.log_k, a.interval, a.minima, a.samples, problem, a.confidence, a.method)


def allocation_from_law(law: StudyLaw, cells: Cells) -> Allocation:
    """N_opt ∝ C^a implied by a presented L(N, D) (see the module docstring); refused with the law's reason."""
    method = "from L(N, D)"
    empty = Allocation(math.nan, math.nan, (math.nan, math.nan), pd.DataFrame(), np.zeros((0, 2)), None,
                       cells.confidence, method)
    if not law.presented or law.fit is None:
        return _refused(empty, f"L(N, D) is not presented ({law.problem})")
    configs = cells.table.groupby("config").agg(params=("params", "first"), per_step=("flops_per_step", "first"),
                                                examples=("examples", "sum"), steps=("budget_steps", "sum"))
    if configs["params"].nunique() < 2:
        return _refused(empty, "one configuration size: FLOPs per example cannot be related to N")
    per_example = configs["per_step"] * configs["steps"] / configs["examples"]
    kappa, log_f0 = np.polyfit(np.log(configs["params"]), np.log(per_example), 1)

    def rule(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # rows E, A, α, B, β → (a, log k)
        a_, alpha, b_, beta = c[:, 1], c[:, 2], c[:, 3], c[:, 4]
        denominator = alpha + kappa * beta
        return beta / denominator, (np.log(alpha * a_ / (kappa * beta * b_)) - beta * log_f0) / denominator

    a, log_k = rule(law.fit.point[None])
    samples = np.column_stack(rule(law.fit.samples))
    tail = 50.0 * (1.0 - cells.confidence)
    interval = tuple(float(v) for v in np.percentile(samples[:, 0], [tail, 100 - tail]))
    budgets = np.unique(cells.table.loc[cells.table["kind"] == KIND_FLOPS, "budget"])
    minima = pd.DataFrame({"budget": budgets, "n_opt": np.exp(log_k[0] + a[0] * np.log(budgets))})
    result = Allocation(float(a[0]), float(log_k[0]), interval, minima, samples, None, cells.confidence,  # type: ignore[arg-type]
                        f"from L(N, D), FLOPs per example ∝ N^{kappa:.2f}")
    if not interval[1] - interval[0] <= MAX_ALLOCATION_WIDTH:
        return _refused(result, f"a = {a[0]:.3f} has the interval [{interval[0]:.3f}, {interval[1]:.3f}], wider "
                                f"than {MAX_ALLOCATION_WIDTH}: the exponent is not identified")
    return result


# ---------------------------------------------------------------------------------------------- advice


def gpu_flops(gpu_hours: float, gpu: str, mfu: float = DEFAULT_MFU) -> float:
    """Training FLOPs of ``gpu_hours`` on ``gpu`` (a key of :data:`GPU_PEAK_FLOPS`, any case) at ``mfu``."""
    key = gpu.upper()
    if key not in GPU_PEAK_FLOPS:
        raise ReportInputError(f"--gpu {gpu!r}: unknown GPU; expected one of {', '.join(GPU_PEAK_FLOPS)}")
    if not (0 < mfu <= 1):
        raise ReportInputError(f"--mfu {mfu}: expected a fraction in (0, 1]")
    if not gpu_hours > 0:
        raise ReportInputError(f"--budget {gpu_hours}: expected a positive number of GPU-hours")
    return gpu_hours * 3600.0 * GPU_PEAK_FLOPS[key] * mfu


@dataclass(frozen=True)
class Advice:
    """What :func:`advise` found: the budget in FLOPs, the extrapolation factor over the largest studied
    budget, the backtested factor, and either a recommendation (``recommended`` config, ``n_opt`` with its
    interval, ``steps``, ``predicted`` target with interval) or ``reason`` why there is none."""

    budget_flops: float
    basis: str
    metric: str
    target: str
    largest_budget: float
    factor: float
    supported_factor: float
    support: str
    optima: tuple[BudgetOptimum, ...]
    allocation: Allocation | None
    law_allocation: Allocation | None = None
    reason: str | None = None
    recommended: str | None = None
    n_opt: tuple[float, float, float] | None = None
    steps: float | None = None
    predicted: tuple[float, float, float] | None = None
    predicted_by: str | None = None
    rule: str | None = None

    def lines(self) -> list[str]:
        out = [self.basis]
        if math.isfinite(self.largest_budget):
            out.append(f"Largest studied FLOPs budget: {self.largest_budget:.3g}; this budget is "
                       f"{self.factor:.3g}× that.")
        out.append(self.support)
        out += [a.text() + "." for a in (self.allocation, self.law_allocation) if a is not None]
        out += [f"Best at {o.text(self.target)}" for o in self.optima]
        if self.reason is not None:
            out.append(f"No recommendation: {self.reason}")
            return out
        assert self.n_opt is not None
        rec = (f"Recommendation: about {self.n_opt[0]:.3g} parameters [{self.n_opt[1]:.3g}, {self.n_opt[2]:.3g}] "
               f"({self.rule}); "
               f"the nearest studied configuration is {self.recommended}, {self.steps:.0f} steps at this budget")
        if self.predicted is not None:
            rec += (f"; predicted {self.target} {self.predicted[0]:.4g} [{self.predicted[1]:.4g}, "
                    f"{self.predicted[2]:.4g}] ({self.predicted_by})")
        out.append(rec + ".")
        return out


def advise(table: pd.DataFrame, budget_flops: float, *, basis: str = "", metric: str = "val/loss",
           n_bootstrap: int = 1000, seed: int = 0, structures: pd.DataFrame | None = None) -> Advice:
    """Advice for a training budget of ``budget_flops`` from a completed-runs table (see the module docstring).

    ``basis``: how the budget was derived (printed first). Refuses (``Advice.reason``) when the runs have no
    FLOPs budgets, no allocation rule is identified, or the budget lies farther above the largest (or below
    the smallest) studied budget than a passing backtest extrapolated.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        cells = target_cells(cells_of(table, metric, n_bootstrap=n_bootstrap, seed=seed, structures=structures))
        optima = tuple(budget_optima(cells))
        laws = {name: study_law(name, cells) for name in (LAW_C, LAW_ND)}
    basis = basis or f"Budget: {budget_flops:.3g} FLOPs."
    _, target = next(iter(laws.values())).metric, next(iter(laws.values())).target
    flops_budgets = cells.table.loc[cells.table["kind"] == KIND_FLOPS, "budget"]
    common = dict(budget_flops=budget_flops, basis=basis, metric=metric, target=target, optima=optima)
    if flops_budgets.empty:
        return Advice(**common, largest_budget=math.nan, factor=math.nan, supported_factor=math.nan,  # type: ignore[arg-type]
                      support="No law can be backtested on FLOPs budgets.", allocation=None,
                      reason="the runs have no FLOPs budgets (every run was trained to a step budget), so there "
                             "are no isoFLOP curves to read a compute-optimal size from")
    largest = float(flops_budgets.max())
    factor = budget_flops / largest
    supported, support = _supported_factor(laws)
    alloc, by_law = allocation(cells), allocation_from_law(laws[LAW_ND], cells)
    advice = dict(common, largest_budget=largest, factor=factor, supported_factor=supported, support=support,
                  allocation=alloc, law_allocation=by_law)
    support_text = (f"support extrapolating at most {supported:.3g}×" if supported > 1 else
                    "support no extrapolation at all")
    if factor > max(supported, 1.0):
        why = (f"the budget is {factor:.3g}× the largest studied budget ({largest:.3g} FLOPs), and the backtests "
               f"{support_text}; run the study at budgets reaching within that factor of it")
        return Advice(**advice, reason=why)  # type: ignore[arg-type]
    smallest = float(flops_budgets.min())
    if budget_flops * max(supported, 1.0) < smallest:
        why = (f"the budget is {smallest / budget_flops:.3g}× below the smallest studied budget ({smallest:.3g} "
               f"FLOPs), and the backtests {support_text}")
        return Advice(**advice, reason=why)  # type: ignore[arg-type]
    rule = by_law if by_law.problem is None else alloc
    if rule.problem is not None:
        return Advice(**advice, reason=f"no allocation rule is identified ({alloc.problem}; {by_law.problem})")  # type: ignore[arg-type]
    n_opt = rule.n_opt(budget_flops)
    sizes = cells.table.drop_duplicates("config").set_index("config")
    nearest = str((np.log(sizes["params"]) - math.log(n_opt[0])).abs().idxmin())
    steps = budget_flops / float(sizes.loc[nearest, "flops_per_step"])
    predicted, by = None, None
    if laws[LAW_C].presented:
        value, low, high = laws[LAW_C].predict(np.array([[budget_flops]]))
        predicted, by = (float(value[0]), float(low[0]), float(high[0])), f"{LAW_C} at this budget"
    return Advice(**advice, recommended=nearest, n_opt=n_opt, steps=steps, predicted=predicted,  # type: ignore[arg-type]
                  predicted_by=by, rule=f"allocation rule {rule.method}")


def _supported_factor(laws: dict[str, StudyLaw]) -> tuple[float, str]:
    """The largest factor by which a presented law, refitted without its largest budget, extrapolated and
    passed; and a sentence saying which (or why none)."""
    best, which = 1.0, None
    for law in laws.values():
        if not law.presented:
            continue
        for b in law.backtests:
            if b.holdout == HOLDOUT_BUDGET and b.passed and b.factor > best:
                best, which = b.factor, f"{law.name} refitted {b.text()}"
    if which is None:
        reasons = "; ".join(f"{law.name} {law.status()}" for law in laws.values())
        return 1.0, f"No law passed a backtest without its largest budget ({reasons})."
    return best, f"Backtests support extrapolating up to {best:.3g}×: {which}."
