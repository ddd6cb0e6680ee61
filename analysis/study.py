"""A study's runs as the analysis compares them: one row per run that completed its schedule, per budget it
completes (``completed_runs``), and the values each configuration's seeds give at a budget on each cost axis.

Runs are compared only where each has completed its own schedule (its last step, where a warmup–stable–decay
run has cooled down), never part-way through a longer one. Three cost axes, each named wherever it is used:

- **matched compute (FLOPs)**: every configuration trained to the same analytic training FLOPs (a study's FLOPs
  budgets; the practitioner's question, Chinchilla's isoFLOP design);
- **matched steps**: every configuration trained for the same number of optimizer steps (a study's step budgets,
  or the one length every run of an older sweep trained for; the paper's framing);
- **matched device-seconds**: every configuration given the same measured training time on the machine that ran
  it. A design cannot fix seconds in advance, so each configuration's completed FLOPs budgets are interpolated,
  per seed and linearly in log seconds, to common time points; a configuration whose completed runs do not
  bracket a time point is not compared there (no extrapolation).

A sweep of runs that predate study designs (one schedule length, the AF3 recipe) gives the matched-steps axis at
that length only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import record_names
from analysis.collect import ReportInputError

AXIS_FLOPS = "matched compute (FLOPs)"
AXIS_STEPS = "matched steps"
AXIS_SECONDS = "matched device-seconds"
AXES = (AXIS_FLOPS, AXIS_STEPS, AXIS_SECONDS)
PRIMARY_METRIC = "val/loss"
STRUCTURE_METRICS = ("val/lddt", "val/contact_precision")

# Settings whose difference makes two runs incomparable (another data pipeline, estimator or recipe); lr, warmup,
# length, schedule bookkeeping and seed are what a study varies or derives.
_NOT_RECIPE = ("train.lr", "train.warmup_steps", "train.threads",
               *(f"train.{key}" for key in record_names.BOOKKEEPING_SETTINGS))
_RECIPE_PREFIXES = ("data.", "train.", "model.sampler.", "model.miniature", "model.policy.",
                    "model.transformer_block_order", "model.zero_init_conditioning")


@dataclass(frozen=True)
class BudgetPoint:
    """A budget on one axis: ``value`` FLOPs, steps or seconds; ``label`` as the report prints it."""

    axis: str
    value: float

    @property
    def label(self) -> str:
        if self.axis == AXIS_FLOPS:
            return f"{self.value:.3g} FLOPs"
        if self.axis == AXIS_STEPS:
            return f"{int(self.value)} steps"
        return f"{self.value:.3g} device-s"


def _budgets_of(row: pd.Series) -> list[tuple[str, float]]:
    tag = str(row.get("study_budgets") or "")
    if not tag:
        return [(AXIS_STEPS, float(row["max_steps"]))]
    out = []
    for part in filter(None, (p.strip() for p in tag.split(";"))):
        kind, _, value = part.partition(":")
        out.append((AXIS_FLOPS if kind == "flops" else AXIS_STEPS, float(value)))
    return out


def check_one_recipe(frame: pd.DataFrame, params: pd.DataFrame | None = None) -> None:
    """Refuse runs of several profiles (``profile`` tag) or, given ``params`` (``analysis.collect.run_table``),
    several recipes: a report that mixes them compares what is not comparable. ReportInputError names the runs."""
    runs = frame.drop_duplicates("run")
    profiles = runs.groupby(runs["profile"].fillna("").astype(str))["name"].apply(list)
    if len(profiles) > 1:
        listing = "; ".join(f"{p or '(none recorded)'}: {', '.join(sorted(map(str, names))[:4])}"
                            + (f" and {len(names) - 4} more" if len(names) > 4 else "")
                            for p, names in profiles.items())
        raise ReportInputError(f"the runs come from {len(profiles)} profiles ({listing}); report one profile at a "
                               "time (its own runs folder, or --sweep/--runs-dir)")
    if params is None:
        return
    keys = [c for c in params.columns if c.startswith("param:")
            and c.removeprefix("param:").startswith(_RECIPE_PREFIXES)
            and c.removeprefix("param:") not in _NOT_RECIPE and not c.removeprefix("param:").startswith("derived")]
    if not keys:
        return
    signature = params[keys].astype(str).agg("|".join, axis=1)
    if signature.nunique() > 1:
        groups = params.groupby(signature)["name"].apply(lambda s: sorted(map(str, s)))
        differ = [k.removeprefix("param:") for k in keys if params[k].astype(str).nunique() > 1]
        listing = "; ".join(", ".join(g[:3]) + (f" and {len(g) - 3} more" if len(g) > 3 else "") for g in groups)
        raise ReportInputError(f"the runs were made with {len(groups)} different recipes (they differ in "
                               f"{', '.join(differ[:6])}): {listing}; report them separately")


def completed_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (run that completed its schedule, budget it completes), with the run's values at its last step.

    frame: tidy (run, step) table (``analysis.collect.tidy``, with a ``group`` column). Columns: the identity
    columns, ``axis`` (of the budget), ``budget`` (FLOPs or steps), ``steps``, ``flops``, ``examples``,
    ``device_s`` (at the end), ``scan`` (a learning-rate scan run), ``in_study`` (a run the study compares: its
    own runs, and a scan run at its configuration's study rate and budget), and every metric at the last step.
    Runs still running, failed or stopped early are left out (:func:`incomplete_runs` names them)."""
    if "group" not in frame:
        from analysis.compare import group_column

        frame = frame.assign(group=group_column(frame))
    rows = []
    for _, curve in frame.groupby("run", sort=False):
        last = curve.iloc[-1]
        max_steps = last["max_steps"]
        if str(last.get("status", "")) != "finished" or math.isnan(max_steps) or int(last["step"]) != int(max_steps):
            continue
        final = curve[curve["step"] == last["step"]].ffill().iloc[-1]
        for axis, value in _budgets_of(final):
            rows.append(final.to_dict() | {"budget_axis": axis, "budget": value, "steps": int(final["step"]),
                                          "scan": final.get("study_role") == "scan"})
    if not rows:
        return pd.DataFrame(columns=[*frame.columns, "budget_axis", "budget", "steps", "scan", "in_study"])
    out = pd.DataFrame(rows)
    # A configuration's study rate: that of its own (non-scan) runs; a scan run at that rate is a study run too.
    own = out[~out["scan"]]
    study_lr = own.groupby("config")["lr"].agg(lambda v: set(np.round(v.astype(float), 12)))
    out["in_study"] = [not scan or round(float(lr), 12) in study_lr.get(cfg, set())
                       for scan, lr, cfg in zip(out["scan"], out["lr"], out["config"], strict=True)]
    return out.reset_index(drop=True)


def incomplete_runs(frame: pd.DataFrame) -> list[str]:
    """Names of runs that have not completed their schedule (running, failed or stopped early)."""
    done = set(completed_runs(frame)["run"])
    runs = frame.drop_duplicates("run")
    return sorted(runs.loc[~runs["run"].isin(done), "name"].astype(str))


def budget_points(completed: pd.DataFrame) -> list[BudgetPoint]:
    """The study's budgets on each axis, in increasing order: FLOPs and step budgets as designed, and one
    matched-seconds point per FLOPs budget (the geometric mean over configurations of their mean device-seconds
    there)."""
    study = completed[completed["in_study"]]
    points = [BudgetPoint(axis, float(v)) for axis in (AXIS_FLOPS, AXIS_STEPS)
              for v in sorted(study.loc[study["budget_axis"] == axis, "budget"].unique())]
    flops = study[(study["budget_axis"] == AXIS_FLOPS) & (study["device_s"] > 0)]
    for value in sorted(flops["budget"].unique()):
        per_config = flops[flops["budget"] == value].groupby("config")["device_s"].mean()
        if len(per_config):
            points.append(BudgetPoint(AXIS_SECONDS, float(np.exp(np.log(per_config).mean()))))
    return points


def values_at(completed: pd.DataFrame, metric: str, point: BudgetPoint, by: str = "group") -> pd.DataFrame:
    """One row per (group, seed) at ``point``: ``run`` (the completed run, or the runs interpolated between),
    ``value``, ``noise`` (the metric's recorded estimator noise at the end, NaN when none), ``cost`` (the
    other axes at that point: FLOPs, steps, device-seconds; NaN when interpolated), ``interpolated``.

    Matched FLOPs and steps read completed runs at exactly that budget; matched seconds interpolate each seed's
    completed FLOPs budgets linearly in log device-seconds, within their range only."""
    from analysis.seeds import NOISE_OF

    study = completed[completed["in_study"]]
    noise_col = NOISE_OF.get(metric)
    cols = ["group", "config", "seed", "run", "value", "noise", "flops", "steps", "device_s", "interpolated"]
    if metric not in study:
        return pd.DataFrame(columns=cols)
    rows = []
    if point.axis in (AXIS_FLOPS, AXIS_STEPS):
        at = study[(study["budget_axis"] == point.axis) & np.isclose(study["budget"], point.value)]
        for _, r in at.dropna(subset=[metric]).iterrows():
            rows.append({"group": r[by], "config": r["config"], "seed": r["seed"], "run": r["run"],
                         "value": float(r[metric]), "noise": float(r.get(noise_col, np.nan)) if noise_col else np.nan,
                         "flops": r["flops"], "steps": r["steps"], "device_s": r["device_s"], "interpolated": False})
        return pd.DataFrame(rows, columns=cols)
    flops = study[(study["budget_axis"] == AXIS_FLOPS) & (study["device_s"] > 0)].dropna(subset=[metric])
    for (group, config, seed), runs in flops.groupby([by, "config", "seed"]):
        runs = runs.sort_values("device_s")
        x = np.log(runs["device_s"].to_numpy(float))
        target = math.log(point.value)
        if len(runs) < 2 or not x[0] <= target <= x[-1]:
            continue
        value = float(np.interp(target, x, runs[metric].to_numpy(float)))
        noise = float(np.nanmax(runs[noise_col].to_numpy(float))) if noise_col and noise_col in runs else np.nan
        rows.append({"group": group, "config": config, "seed": seed, "run": "+".join(runs["run"]), "value": value,
                     "noise": noise, "flops": np.nan, "steps": np.nan, "device_s": point.value,
                     "interpolated": True})
    return pd.DataFrame(rows, columns=cols)


def read_at(completed: pd.DataFrame, point: BudgetPoint) -> pd.DataFrame:
    """Which run each configuration and seed was read at, at ``point``: its steps, lr, FLOPs and device-seconds
    (the report shows it beside every comparison)."""
    study = completed[completed["in_study"]]
    if point.axis == AXIS_SECONDS:
        return pd.DataFrame()
    at = study[(study["budget_axis"] == point.axis) & np.isclose(study["budget"], point.value)]
    return at[["config", "seed", "name", "steps", "lr", "flops", "device_s"]].sort_values(["config", "seed"])


def require_study(frame: pd.DataFrame) -> pd.DataFrame:
    """The completed runs, or ReportInputError when no run has completed its schedule."""
    completed = completed_runs(frame)
    if completed.empty or not completed["in_study"].any():
        raise ReportInputError("no run has completed its schedule yet: nothing to compare (every comparison reads "
                               "runs at the end of their own schedule)")
    return completed
