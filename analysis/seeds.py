"""A configuration's value from its seeds: mean and interval over seeds, with the estimator's own noise.

Every run of a configuration is one draw: seed-to-seed variation (initialisation, data order) plus the
validation estimator's noise (its recorded ``val/*_noise``: the std of the metric at one checkpoint over
independent noise draws). The spread of the seeds already contains the estimator noise, so the two are not
added; the known noise is a floor under the spread, since two or three seeds can agree by chance:

    s² = max(sample variance over seeds, mean recorded noise²),   se = s / √k,   df = k − 1,

and the interval is mean ± t(df)·se. With one seed the spread is unknown; the interval is the estimator noise
alone (normal quantile) and :attr:`Estimate.seed_spread_known` is False, so callers never call such a
difference resolved. Differences of two configurations use Welch's t (Welch–Satterthwaite df).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# The estimator noise recorded beside each validation metric (harness.tracking.names). val/distogram_ce has
# none: it is a function of the weights and the fixed crops only, so its seeds' spread is all there is.
NOISE_OF = {"val/loss": "val/loss_noise", "val/lddt": "val/lddt_noise",
            "val/loss_diffusion": "val/loss_diffusion_noise", "val/smooth_lddt": "val/smooth_lddt_noise"}
# Contact precision has no draw noise either; it records its standard error over the (shared) validation
# structures, which is the uncertainty of a level, not of a difference between runs on the same structures, so it
# is no floor under the seeds' spread (:func:`estimate`); the bootstrap over structures covers it.
LEVEL_ERROR_OF = {"val/contact_precision": "val/contact_precision_noise",
                  "val/contact_precision_sep12": "val/contact_precision_sep12_noise"}


@dataclass(frozen=True)
class Estimate:
    """A configuration's value: ``mean`` over ``n_seeds`` runs with a ``confidence`` interval [low, high].

    ``se``: standard error of the mean; ``df``: its degrees of freedom (inf for the normal quantile);
    ``noise``: mean recorded estimator noise of the runs (NaN when none recorded).
    """

    mean: float
    low: float
    high: float
    se: float
    df: float
    n_seeds: int
    noise: float
    confidence: float = 0.95

    @property
    def seed_spread_known(self) -> bool:
        return self.n_seeds >= 2

    def text(self, digits: int = 4) -> str:
        """``0.153 [0.149, 0.157] (3 seeds)``; the interval is ``[n/a]`` when nothing bounds it."""
        seeds = f"{self.n_seeds} seed{'s' if self.n_seeds != 1 else ''}"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}g} [interval n/a] ({seeds})"
        return f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}] ({seeds})"


def estimate(values: np.ndarray, noises: np.ndarray | None = None, confidence: float = 0.95) -> Estimate:
    """Mean and interval of one configuration from its seeds' ``values``, (k,), and their estimator
    ``noises``, (k,) std in the metric's units (NaN where not recorded). See the module docstring."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    k = len(values)
    if k == 0:
        raise ValueError("estimate: no finite values")
    noises = np.asarray(noises if noises is not None else [], dtype=float)
    noises = noises[np.isfinite(noises)]
    noise_var = float(np.mean(noises**2)) if len(noises) else math.nan
    mean = float(values.mean())
    if k >= 2:
        var = float(values.var(ddof=1))
        if not math.isnan(noise_var):
            var = max(var, noise_var)
        se, df = math.sqrt(var / k), float(k - 1)
    else:
        se, df = math.sqrt(noise_var), math.inf
    half = _quantile(confidence, df) * se
    return Estimate(mean=mean, low=mean - half, high=mean + half, se=se, df=df, n_seeds=k,
                    noise=math.sqrt(noise_var), confidence=confidence)


@dataclass(frozen=True)
class Difference:
    """``a − b`` with its interval; ``resolved`` when both seed spreads are known and the interval excludes 0."""

    value: float
    low: float
    high: float
    se: float
    df: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)


def difference(a: Estimate, b: Estimate, confidence: float = 0.95) -> Difference:
    """Welch interval of ``a.mean − b.mean`` (normal quantile when a seed spread is unknown)."""
    se = math.sqrt(a.se**2 + b.se**2)
    if a.seed_spread_known and b.seed_spread_known and se > 0:
        va, vb = a.se**2, b.se**2
        df = (va + vb) ** 2 / (va**2 / a.df + vb**2 / b.df)
    else:
        df = math.inf
    half = _quantile(confidence, df) * se
    value = a.mean - b.mean
    return Difference(value=value, low=value - half, high=value + half, se=se, df=df)


def _quantile(confidence: float, df: float) -> float:
    tail = 0.5 + confidence / 2
    return float(stats.norm.ppf(tail) if math.isinf(df) else stats.t.ppf(tail, df))


def run_noise(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's recorded estimator noise for ``metric`` (median over its logged values), NaN when absent.

    frame: tidy (run, step) table. Indexed by run.
    """
    noise = NOISE_OF.get(metric)
    runs = frame["run"].drop_duplicates()
    if noise is None or noise not in frame:
        return pd.Series(math.nan, index=runs.to_numpy())
    return frame.groupby("run")[noise].median().reindex(runs.to_numpy())


def curves_by_config(frame: pd.DataFrame, metric: str, confidence: float = 0.95) -> pd.DataFrame:
    """Seed-aggregated curves: one row per (config, step) with ``flops`` (mean over seeds), ``mean``, ``low``,
    ``high``, ``n_seeds``. Seeds of a configuration share the validation schedule; a step some seeds lack is
    aggregated over those that logged it."""
    noise = run_noise(frame, metric)
    points = frame.dropna(subset=[metric])
    rows = []
    for (config, step), group in points.groupby(["config", "step"], sort=True):
        est = estimate(group[metric].to_numpy(), noise.reindex(group["run"]).to_numpy(), confidence)
        rows.append({"config": config, "step": step, "flops": group["flops"].mean(), "mean": est.mean,
                     "low": est.low, "high": est.high, "n_seeds": est.n_seeds})
    return pd.DataFrame(rows, columns=["config", "step", "flops", "mean", "low", "high", "n_seeds"])


def final_by_config(frame: pd.DataFrame, metric: str, confidence: float = 0.95) -> dict[str, Estimate]:
    """Each configuration's final ``metric`` (last logged value of each seed) as an :class:`Estimate`."""
    noise = run_noise(frame, metric)
    finals = frame.dropna(subset=[metric]).groupby("run", sort=False).tail(1)
    return {config: estimate(group[metric].to_numpy(), noise.reindex(group["run"]).to_numpy(), confidence)
            for config, group in finals.groupby("config", sort=False)}


def step0_by_config(frame: pd.DataFrame, metric: str, confidence: float = 0.95) -> dict[str, Estimate]:
    """Each configuration's ``metric`` at step 0 (the untrained model), over seeds; configurations whose
    runs did not validate at step 0 are absent."""
    noise = run_noise(frame, metric)
    first = frame[(frame["step"] == 0)].dropna(subset=[metric])
    return {config: estimate(group[metric].to_numpy(), noise.reindex(group["run"]).to_numpy(), confidence)
            for config, group in first.groupby("config", sort=False)}
