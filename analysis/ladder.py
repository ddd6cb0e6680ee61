"""Loss → structure quality: the second step of OLMo's model ladder (Bhagia et al. 2024).

A structure metric (sampled lDDT, contact precision; scores in [0, 1]) is fitted across completed runs as a
logistic function of the validation loss, on seed-averaged cells:

    logit(metric) = a + b·loss          (identity instead of logit for a metric that is not a score)

— OLMo's sigmoid with its asymptotes fixed at 0 and 1, the two-coefficient form the narrow loss range of a
study can identify. Both metrics of a cell are resampled with the same seed draws (:mod:`analysis.cells`,
paired: a run's loss and metric deviate together), so the interval of (a, b) carries the noise of both axes.
A predicted loss (with its bootstrap samples) becomes a predicted metric whose interval adds the law's, the
mapping's and the cells' scatter around the mapping.

Refused ("not fitted: <reason>") when there are fewer than 2 cells per coefficient, when b's interval
contains 0 (the metric does not follow the loss: not determined), when b has the wrong sign (a score that
rises with the loss: not monotone in the expected direction), or when the residuals ordered by loss are
systematic (runs test: the metric is not a monotone logistic function of the loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from threadpoolctl import threadpool_limits

from analysis.cells import Cells, cells_of
from analysis.collect import ReportInputError
from analysis.fits import SCORE_MARKERS
from analysis.laws import POINTS_PER_COEFFICIENT, RunsTest, runs_test


@dataclass(frozen=True)
class Ladder:
    """``metric`` = link⁻¹(a + b·``loss``). ``samples``: (a, b) per resample; ``residual_sd``: standard
    deviation of the cells around the mapping on the link scale; ``points``: per cell ``config``,
    ``budget``, ``loss`` and ``metric`` (seed means) with their bootstrap intervals; ``problem``: why the
    mapping is not presented (None: it is; a refused mapping has no coefficients: a, b NaN, no samples)."""

    metric: str
    loss: str
    link: str
    a: float
    b: float
    samples: np.ndarray
    residual_sd: float
    points: pd.DataFrame
    runs: RunsTest | None
    problem: str | None
    confidence: float = 0.95

    @property
    def presented(self) -> bool:
        return self.problem is None

    @property
    def form(self) -> str:
        inner = f"a + b·{self.loss}"
        return f"{self.metric} = σ({inner})" if self.link == "logit" else f"{self.metric} = {inner}"

    def interval(self) -> dict[str, tuple[float, float]]:
        tail = 50.0 * (1.0 - self.confidence)
        low, high = np.percentile(self.samples, [tail, 100 - tail], axis=0)
        return {"a": (float(low[0]), float(high[0])), "b": (float(low[1]), float(high[1]))}

    def status(self) -> str:
        if self.problem is not None:
            return f"not fitted: {self.problem}"
        iv = self.interval()
        return (f"{self.form}: a = {self.a:.3g} [{iv['a'][0]:.3g}, {iv['a'][1]:.3g}], b = {self.b:.3g} "
                f"[{iv['b'][0]:.3g}, {iv['b'][1]:.3g}]")

    def predict(self, loss: float, loss_samples: np.ndarray | None = None, seed: int = 0
                ) -> tuple[float, float, float]:
        """The metric at a predicted ``loss``: point, low, high. ``loss_samples``: the loss prediction's
        bootstrap samples (its uncertainty), paired with the mapping's resamples by index; the interval also
        draws the cells' scatter around the mapping (``residual_sd``). Raises ValueError when not presented."""
        if not self.presented:
            raise ValueError(f"{self.metric} from {self.loss} is not fitted: {self.problem}")
        inverse = expit if self.link == "logit" else (lambda v: v)
        losses = np.full(len(self.samples), loss) if loss_samples is None else np.resize(loss_samples,
                                                                                          len(self.samples))
        noise = np.random.default_rng(seed).normal(0.0, self.residual_sd, len(self.samples))
        values = inverse(self.samples[:, 0] + self.samples[:, 1] * losses + noise)
        tail = 50.0 * (1.0 - self.confidence)
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(inverse(self.a + self.b * loss)), float(low), float(high)


def is_score(metric: str) -> bool:
    return any(marker in metric.lower() for marker in SCORE_MARKERS)


def loss_to_metric(table: pd.DataFrame, metric: str, loss: str = "val/loss", *, n_bootstrap: int = 1000,
                   seed: int = 0, confidence: float = 0.95) -> Ladder:
    """Fit ``metric`` as a function of ``loss`` over the cells of a completed-runs table (module docstring).

    Runs lacking either value are left out. Raises ReportInputError when no run has both.
    """
    both = table.dropna(subset=[metric, loss]) if metric in table and loss in table else table.iloc[:0]
    if both.empty:
        raise ReportInputError(f"no completed run has both {loss!r} and {metric!r}")
    with threadpool_limits(limits=1, user_api="blas"):
        # The same seed and the same runs give the same draws to both metrics: the resampling is paired.
        x = cells_of(both, loss, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
        y = cells_of(both, metric, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
        return _fit(x, y, confidence)


def _fit(x: Cells, y: Cells, confidence: float) -> Ladder:
    link = "logit" if is_score(y.metric) else "identity"
    forward = logit if link == "logit" else (lambda v: v)
    (x_low, x_high), (y_low, y_high) = x.interval(), y.interval()
    points = x.table[["config", "kind", "budget"]].assign(
        loss=x.table["value"], loss_low=x_low, loss_high=x_high, metric=y.table["value"], metric_low=y_low,
        metric_high=y_high)
    empty = Ladder(y.metric, x.metric, link, math.nan, math.nan, np.zeros((0, 2)), math.nan, points, None, None,
                   confidence)
    n = len(points)
    if n < 2 * POINTS_PER_COEFFICIENT:
        return _refuse(empty, f"too few points ({n} cells for 2 coefficients; needs at least "
                              f"{2 * POINTS_PER_COEFFICIENT})")
    if link == "logit" and not ((y.table["value"] > 0) & (y.table["value"] < 1)).all():
        return _refuse(empty, f"{y.metric} is a score but a cell mean lies outside (0, 1)")
    lx, ly = x.table["value"].to_numpy(), forward(y.table["value"].to_numpy())
    if np.ptp(lx) == 0:
        return _refuse(empty, f"every cell has the same {x.metric}")
    b, a = np.polyfit(lx, ly, 1)
    residuals = ly - (a + b * lx)
    rx, ry = x.replicates, forward(np.clip(y.replicates, 1e-9, 1 - 1e-9) if link == "logit" else y.replicates)
    rx_c = rx - rx.mean(1, keepdims=True)
    slopes = (rx_c * (ry - ry.mean(1, keepdims=True))).sum(1) / (rx_c**2).sum(1)
    intercepts = ry.mean(1) - slopes * rx.mean(1)
    test = runs_test(lx, residuals, x.metric)
    result = Ladder(y.metric, x.metric, link, float(a), float(b), np.column_stack([intercepts, slopes]),
                    float(np.sqrt((residuals**2).sum() / (n - 2))), points, test, None, confidence)
    low, high = result.interval()["b"]
    expected = -1.0 if link == "logit" else float(np.sign(b))  # a score should fall as the loss rises
    if low <= 0 <= high:
        return _refuse(result, f"not determined: the slope b = {b:+.3g} [{low:+.3g}, {high:+.3g}] of "
                               f"{'logit ' if link == 'logit' else ''}{y.metric} on {x.metric} is not resolved from 0, "
                               "so the metric does not follow the loss across these runs")
    if np.sign(b) != expected:
        return _refuse(result, f"not monotone in the expected direction: {y.metric} rises with {x.metric} "
                               f"(b = {b:+.3g} [{low:+.3g}, {high:+.3g}]): lower loss goes with worse structures")
    if test.systematic:
        return _refuse(result, f"residuals are systematic ({test.text()}): {y.metric} is not a monotone "
                               f"logistic function of {x.metric} here")
    return result


def _refuse(ladder: Ladder, problem: str) -> Ladder:
    """The mapping refused: no coefficients to draw (the numbers that refused it are in ``problem``)."""
    return Ladder(ladder.metric, ladder.loss, ladder.link, math.nan, math.nan, np.zeros((0, 2)), ladder.residual_sd,
                  ladder.points, ladder.runs, problem, ladder.confidence)
