"""Pre-registered predictions: what a presented law predicts for a run that does not exist yet, written to a
JSON file before the run, and compared with the run's outcome once it exists (as Marin's Delphi did).

A target is a FLOPs budget with a configuration (predicted by L(N, D) at that configuration's N and the
examples it will see at that budget) or without one (the compute-optimal value, predicted by L(C)). Each
prediction records the law, its coefficients and backtests, the point and interval of the metric (the law's
bootstrap band), the seed-to-seed standard deviation within cells, and, where the loss → structure mapping
is presented, the structure metrics it implies (:mod:`analysis.ladder`).

Checking: the completed runs at the target (same configuration, budget within 1e-6 relative) give the
observed seed mean with its t-interval; the outcome is *inside* when it lies in the prediction interval widened
by the seed noise of that many seeds (half-widths added in quadrature, 1.96·sd/√k).
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.collect import ReportInputError
from analysis.completed import COLUMNS, check_completed_runs
from analysis.fits import to_error
from analysis.ladder import loss_to_metric
from analysis.seeds import estimate
from analysis.study_laws import LAW_C, LAW_ND, study_laws

VERSION = 1
BUDGET_RTOL = 1e-6


@dataclass(frozen=True)
class Target:
    """A run to predict: a FLOPs budget and a configuration (None: the best configuration at that budget)."""

    budget_flops: float
    config: str | None = None

    def text(self) -> str:
        who = self.config if self.config is not None else "the compute-optimal configuration"
        return f"{who} at {self.budget_flops:.4g} FLOPs"


def _to_metric(metric: str, values: np.ndarray) -> np.ndarray:
    """Back from the fitted target to the metric (``1 − error`` for scores, identity otherwise)."""
    _, target = to_error(metric, np.zeros(1))
    return 1.0 - values if target != metric else values


def predict(table: pd.DataFrame, targets: list[Target], *, metric: str = "val/loss",
            structure_metrics: tuple[str, ...] = ("val/lddt", "val/contact_precision"), n_bootstrap: int = 1000,
            seed: int = 0, sweep: str = "", structures: pd.DataFrame | None = None) -> dict[str, Any]:
    """The predictions of ``targets`` as a JSON-able record (module docstring). Raises ReportInputError naming
    the target when its law is not presented or its configuration is not among the runs."""
    if not targets:
        raise ReportInputError("--predict-budget: give at least one FLOPs budget to predict")
    runs = check_completed_runs(table, (metric,))
    points = {t: np.array([[t.budget_flops]]) if t.config is None else _config_point(runs, t) for t in targets}
    laws = study_laws(runs, metric, n_bootstrap=n_bootstrap, seed=seed, structures=structures,
                      names=(LAW_C, LAW_ND))
    ladders = {m: loss_to_metric(runs, m, metric, n_bootstrap=n_bootstrap, seed=seed)
               for m in structure_metrics if m in runs and runs[m].notna().any()}
    largest = float(runs[COLUMNS.budget_flops].max()) if runs[COLUMNS.budget_flops].notna().any() else math.nan
    out = []
    for target in targets:
        law = laws[LAW_C] if target.config is None else laws[LAW_ND]
        if not law.presented or law.fit is None:
            raise ReportInputError(f"--predict {target.text()}: {law.name} of {metric} is not fitted: {law.problem}")
        x = points[target]
        point, low, high = (float(v[0]) for v in law.predict(x))
        samples = law.fit.predict_samples(x)[:, 0]
        values = _to_metric(metric, np.array([point, low, high]))
        low_m, high_m = sorted(values[1:])
        entry: dict[str, Any] = {
            "target": {"config": target.config, "budget_flops": target.budget_flops}, "metric": metric,
            "law": law.name, "form": law.form, "coefficients": law.fit.coefficients,
            "predicted": float(values[0]), "interval": [float(low_m), float(high_m)],
            "confidence": law.fit.confidence, "seed_sd": law.seed_sd,
            "factor_over_largest_budget": target.budget_flops / largest if math.isfinite(largest) else None,
            "backtests": [b.text() for b in law.backtests], "structure": {},
        }
        loss_samples = _to_metric(metric, samples)
        for name, ladder in ladders.items():
            if ladder.presented:
                p, lo, hi = ladder.predict(float(values[0]), loss_samples, seed=seed)
                entry["structure"][name] = {"predicted": p, "interval": [lo, hi], "mapping": ladder.status()}
            else:
                entry["structure"][name] = {"not_fitted": ladder.problem}
        out.append(entry)
    return {"version": VERSION, "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "sweep": sweep, "metric": metric, "n_bootstrap": n_bootstrap, "n_runs": len(runs),
            "runs": sorted(map(str, runs[COLUMNS.run])),
            "largest_budget_flops": largest if math.isfinite(largest) else None, "predictions": out}


def _config_point(runs: pd.DataFrame, target: Target) -> np.ndarray:
    """(1, 2) predictors (N, D) of a configuration at the target budget: D = budget / FLOPs per step ×
    examples per step (both from that configuration's completed runs)."""
    c = COLUMNS
    rows = runs[runs[c.config] == target.config]
    if rows.empty:
        known = ", ".join(sorted(map(str, runs[c.config].unique())))
        raise ReportInputError(f"--predict {target.text()}: no configuration {target.config!r} among the runs "
                               f"(known: {known})")
    per_step = float(rows[c.flops_per_step].iloc[0])
    examples_per_step = float((rows[c.examples] / rows[c.steps]).mean())
    return np.array([[float(rows[c.params].iloc[0]), target.budget_flops / per_step * examples_per_step]])


def write_predictions(record: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def read_predictions(path: str | Path) -> dict[str, Any]:
    """A predictions file as written by :func:`write_predictions`; ReportInputError naming the file otherwise."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read the predictions file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(
            record.get("predictions"), list):
        raise ReportInputError(f"{path}: not a predictions file (expected version {VERSION} with a list "
                               "'predictions')")
    for i, entry in enumerate(record["predictions"]):
        keys = {"target", "metric", "law", "predicted", "interval", "seed_sd"}
        if not isinstance(entry, dict) or not keys <= set(entry) or "budget_flops" not in entry["target"]:
            raise ReportInputError(f"{path}: prediction {i} lacks {sorted(keys)} or target.budget_flops")
    return record


@dataclass(frozen=True)
class PredictionCheck:
    """One registered prediction against its outcome: ``observed`` seed mean with its t-interval over
    ``n_seeds`` runs (``config``: the configuration observed, the best one for a compute-optimal target),
    ``error`` = (predicted − observed) / observed, ``inside``: the outcome lies in the prediction interval
    widened by the seed noise of ``n_seeds`` seeds (``low``/``high``)."""

    target: Target
    metric: str
    law: str
    created: str
    predicted: float
    low: float
    high: float
    config: str
    observed: float
    observed_low: float
    observed_high: float
    n_seeds: int
    error: float
    inside: bool

    def text(self) -> str:
        verdict = "inside" if self.inside else "outside"
        return (f"{self.target.text()}: predicted {self.metric} {self.predicted:.4g} [{self.low:.4g}, "
                f"{self.high:.4g}] ({self.law}, registered {self.created}); observed {self.observed:.4g} "
                f"[{self.observed_low:.4g}, {self.observed_high:.4g}] ({self.config}, {self.n_seeds} seeds): "
                f"error {100 * self.error:+.2f} %, {verdict} the prediction interval")


def check_predictions(path: str | Path, table: pd.DataFrame) -> list[PredictionCheck]:
    """Compare every prediction of the file at ``path`` with the completed runs of ``table``. Raises
    ReportInputError naming the file and the target when no completed run matches a target."""
    record = read_predictions(path)
    c = COLUMNS
    runs = check_completed_runs(table)
    out = []
    for entry in record["predictions"]:
        target = Target(float(entry["target"]["budget_flops"]), entry["target"].get("config"))
        metric = entry["metric"]
        at = runs[np.isclose(runs[c.budget_flops].astype(float), target.budget_flops, rtol=BUDGET_RTOL, atol=0)]
        if target.config is not None:
            at = at[at[c.config] == target.config]
        at = at.dropna(subset=[metric]) if metric in at else at.iloc[:0]
        if at.empty:
            budgets = sorted(runs[c.budget_flops].dropna().unique())
            raise ReportInputError(
                f"{path}: target {target.text()}: no completed run with {metric} there yet (completed FLOPs "
                f"budgets: {', '.join(f'{b:.4g}' for b in budgets) or 'none'})")
        means = at.groupby(c.config)[metric].mean()
        _, fitted = to_error(metric, np.zeros(1))
        best = str(means.idxmin() if fitted == metric else means.idxmax())
        rows = at[at[c.config] == best]
        noise = rows[c.loss_noise].to_numpy(float) if metric == c.loss and c.loss_noise in rows else None
        est = estimate(rows[metric].to_numpy(float), noise)
        predicted, (low, high) = float(entry["predicted"]), (float(v) for v in entry["interval"])
        widen = 1.96 * float(entry["seed_sd"] or 0.0) / math.sqrt(est.n_seeds)
        low_w = predicted - math.hypot(predicted - low, widen)
        high_w = predicted + math.hypot(high - predicted, widen)
        out.append(PredictionCheck(target=target, metric=metric, law=entry["law"],
                                   created=str(record.get("created", "")), predicted=predicted, low=low_w,
                                   high=high_w, config=best, observed=est.mean, observed_low=est.low,
                                   observed_high=est.high, n_seeds=est.n_seeds,
                                   error=(predicted - est.mean) / est.mean, inside=low_w <= est.mean <= high_w))
    return out


def check_rows(checks: list[PredictionCheck]) -> pd.DataFrame:
    """One table row per checked prediction."""
    return pd.DataFrame([{
        "target": ch.target.text(), "metric": ch.metric, "law": ch.law, "registered": ch.created,
        "predicted": f"{ch.predicted:.4g} [{ch.low:.4g}, {ch.high:.4g}]",
        "observed": f"{ch.observed:.4g} [{ch.observed_low:.4g}, {ch.observed_high:.4g}] ({ch.n_seeds} seeds)",
        "error": f"{100 * ch.error:+.2f} %", "verdict": "inside" if ch.inside else "outside"} for ch in checks])


def prediction_lines(record: dict[str, Any]) -> list[str]:
    """One line per prediction of a record: target, value with interval, law and extrapolation factor, and the
    structure metrics it implies."""
    out = []
    for p in record["predictions"]:
        target = Target(p["target"]["budget_flops"], p["target"]["config"])
        factor = p.get("factor_over_largest_budget")
        line = (f"{target.text()}: {p['metric']} {p['predicted']:.4g} [{p['interval'][0]:.4g}, {p['interval'][1]:.4g}]"
                f" ({p['law']}" + (f", {factor:.3g}× the largest studied budget" if factor else "") + ")")
        for name, s in p.get("structure", {}).items():
            line += (f"; {name} {s['predicted']:.3g} [{s['interval'][0]:.3g}, {s['interval'][1]:.3g}]"
                     if "predicted" in s else f"; {name} not predicted ({s['not_fitted']})")
        out.append(line)
    return out


def registered(frame: pd.DataFrame | None, out_dir: str | Path, *, sweep: str, budgets: list[float],
               config: str | None, out: str | Path | None, checks: list[Path], n_bootstrap: int) -> list[str]:
    """What ``harness report --predict-budget ... --check-predictions ...`` does: write the predictions of
    ``budgets`` (for ``config``, or the compute-optimal configuration) to ``out`` (default
    ``out_dir/predictions.json``), compare every file in ``checks`` with the completed runs of ``frame`` (a
    tidy frame; its table ``prediction_checks`` goes to ``out_dir``), and return the lines to print."""
    from analysis.completed import completed_runs
    from analysis.tables import write_table

    if frame is None:
        raise ReportInputError("--predict-budget / --check-predictions need recorded runs (a tracking URI or a "
                               "runs folder)")
    table = completed_runs(frame)
    lines = []
    if budgets:
        record = predict(table, [Target(b, config) for b in budgets], sweep=sweep, n_bootstrap=n_bootstrap)
        path = write_predictions(record, out or Path(out_dir) / "predictions.json")
        lines += [f"prediction: {line}" for line in prediction_lines(record)]
        lines.append(f"predictions ({n_bootstrap} resamples) registered in {path}")
    rows = []
    for path in checks:
        results = check_predictions(path, table)
        rows.append(check_rows(results).assign(file=str(path)))
        lines += [f"prediction check ({path}): {r.text()}" for r in results]
    if rows:
        write_table(pd.concat(rows, ignore_index=True), out_dir, "prediction_checks",
                    "Pre-registered predictions against the runs that now exist")
    return lines
